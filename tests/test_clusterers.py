"""Every clusterer family on tiny synthetic features: shapes, separation, noise, bad parameters."""

import numpy as np
import pytest

from src.clustering import (
    AgglomerativeClusterer,
    AutoKClusterer,
    DBSCANClusterer,
    FelzenszwalbClusterer,
    GaussianMixtureClusterer,
    HDBSCANClusterer,
    KMeansClusterer,
    MeanShiftClusterer,
    MiniBatchKMeansClusterer,
    SLICClusterer,
    SuperpixelFeatureClusterer,
    elbow,
    region_adjacency,
)
from src.data import Frame
from src.errors import LabError
from src.pipeline import process_frames
from src.postprocess import EnclosedByField, FieldClusters, PlayerMask, PostprocessChain, connected_components


def two_regions(h=24, w=32):
    feats = np.zeros((h, w, 2), np.float32)
    feats[:, w // 2:, 0] = 5.0
    return feats + np.random.default_rng(0).normal(0, 0.05, feats.shape).astype(np.float32)


SEPARATING = [
    MiniBatchKMeansClusterer(n_clusters=2, seed=1),
    GaussianMixtureClusterer(n_clusters=2, fit_sample=200, seed=1),
    DBSCANClusterer(eps=0.5, min_samples=5, fit_sample=300),
    HDBSCANClusterer(min_cluster_size=20, fit_sample=300),
    MeanShiftClusterer(bandwidth=1.0, fit_sample=300),
    FelzenszwalbClusterer(scale=100, sigma=0.0, min_size=20),
    AgglomerativeClusterer(n_clusters=2, n_segments=40, linkage="ward"),
]


@pytest.mark.parametrize("clusterer", SEPARATING, ids=lambda c: type(c).__name__)
def test_two_regions_get_two_labels(clusterer):
    labels = clusterer.fit_predict(two_regions())
    assert labels.shape == (24, 32) and np.issubdtype(labels.dtype, np.integer)
    left, right = labels[:, :16], labels[:, 16:]
    assert np.bincount(left[left >= 0]).argmax() != np.bincount(right[right >= 0]).argmax()
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1


@pytest.mark.parametrize("clusterer", [*SEPARATING, KMeansClusterer(n_clusters=2, fit_sample=100, seed=0)],
                         ids=lambda c: type(c).__name__)
def test_double_precision_features_are_left_alone(clusterer):
    # the sampled clusterers read float64 features without copying them: a copy no longer shields the caller's array
    features = two_regions().astype(np.float64)
    before = features.copy()
    clusterer.fit_predict(features)
    assert np.array_equal(features, before)


def test_slic_gives_about_n_segments():
    labels = SLICClusterer(n_segments=12, compactness=1.0).fit_predict(two_regions())
    assert 4 <= len(np.unique(labels)) <= 24 and labels.min() == 0


def test_dbscan_marks_sparse_pixels_as_noise():
    feats = np.zeros((20, 20, 1), np.float32)
    feats[5, 5] = feats[12, 3] = 40.0
    feats[15, 15] = -40.0
    labels = DBSCANClusterer(eps=0.5, min_samples=3, fit_sample=None).fit_predict(feats)
    assert labels[5, 5] == labels[15, 15] == -1 and (labels == 0).sum() == 397


def test_dbscan_auto_eps_follows_each_frames_k_distances():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(30, 30, 2)).astype(np.float32)
    dense[3, 4] = dense[20, 7] = (25.0, 25.0)      # two far, sparse pixels
    clusterer = DBSCANClusterer(eps="auto", eps_scale=1.5, min_samples=5, fit_sample=None)
    labels = clusterer.fit_predict(dense)
    flat = dense.reshape(-1, 2).astype(np.float64)
    from sklearn.neighbors import NearestNeighbors
    kth = NearestNeighbors(n_neighbors=5).fit(flat).kneighbors(flat)[0][:, -1]
    assert clusterer.fit_metrics["dbscan_eps"] == pytest.approx(1.5 * np.median(kth))
    assert labels[3, 4] == labels[20, 7] == -1 and (labels >= 0).mean() > 0.8
    # the same frame spread ten times wider gets a radius ten times larger and the same labels
    wide = DBSCANClusterer(eps="auto", eps_scale=1.5, min_samples=5, fit_sample=None)
    assert np.array_equal(wide.fit_predict(dense * 10), labels)
    assert wide.fit_metrics["dbscan_eps"] == pytest.approx(10 * clusterer.fit_metrics["dbscan_eps"], rel=1e-5)


def test_sample_then_assign_is_deterministic():
    feats = np.random.default_rng(2).normal(size=(30, 30, 3)).astype(np.float32)
    a = GaussianMixtureClusterer(n_clusters=4, fit_sample=300, seed=5).fit_predict(feats)
    assert np.array_equal(a, GaussianMixtureClusterer(n_clusters=4, fit_sample=300, seed=5).fit_predict(feats))


def test_only_noise_still_yields_mask_and_metrics():
    image = np.zeros((24, 32, 3), np.uint8)
    image[...] = (40, 130, 40)
    truth = np.zeros((24, 32), bool)
    truth[8:12, 10:13] = True
    frame = Frame(image=image, mask=truth, image_id=1, file_name="t.jpg", scale=1, n_instances=1)
    features = lambda f: np.zeros((24, 32, 2), np.float32) + np.arange(24 * 32).reshape(24, 32, 1)  # noqa: E731
    chain = PostprocessChain({"field": FieldClusters(), "enclosed": EnclosedByField()})
    (result,) = process_frames([frame], features, DBSCANClusterer(eps=0.1, min_samples=50, fit_sample=None), chain)
    assert (result.labels == -1).all()
    assert result.metrics["dice"] == 0.0 and result.metrics["n_clusters"] == 0
    assert np.isnan(result.metrics["silhouette"]) and result.metrics["inertia"] == 0.0


def test_region_adjacency_by_hand():
    segments = np.array([[0, 0, 1],
                         [2, 2, 1]])
    graph = region_adjacency(segments).toarray()
    assert graph.tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]


@pytest.mark.parametrize("make, match", [
    (lambda: DBSCANClusterer(eps=0), r"eps=0 is out of range; allowed \(0, inf\]"),
    (lambda: DBSCANClusterer(eps=-1.0), r"eps=-1.0 is out of range"),
    (lambda: DBSCANClusterer(min_samples=0), r"min_samples=0 is out of range"),
    (lambda: DBSCANClusterer(eps="automatic"), r"eps='automatic' must be a number"),
    (lambda: DBSCANClusterer(eps_scale=0), r"eps_scale=0 is out of range"),
    (lambda: GaussianMixtureClusterer(covariance_type="round"), r"covariance_type='round' is not allowed"),
    (lambda: HDBSCANClusterer(min_cluster_size=1), r"min_cluster_size=1 is out of range"),
    (lambda: MeanShiftClusterer(quantile=0), r"quantile=0 is out of range"),
    (lambda: SLICClusterer(compactness=0), r"compactness=0 is out of range"),
    (lambda: FelzenszwalbClusterer(scale=-2.0), r"scale=-2.0 is out of range"),
    (lambda: AgglomerativeClusterer(n_clusters=20, n_segments=10), r"n_segments=10 is smaller than"),
    (lambda: AgglomerativeClusterer(linkage="median"), r"linkage='median' is not allowed"),
    (lambda: MiniBatchKMeansClusterer(n_clusters=0), r"n_clusters=0 is out of range"),
    (lambda: KMeansClusterer(n_votes=0), r"n_votes=0 is out of range"),
    (lambda: KMeansClusterer(n_votes=2.5), r"n_votes=2.5 must be an integer"),
    # fitted on fewer pixels than the estimator needs, scikit-learn would fail on the first frame
    (lambda: KMeansClusterer(n_clusters=12, fit_sample=5), r"^fit_sample=5 is fewer than the 12 points n_clusters=12"),
    (lambda: GaussianMixtureClusterer(fit_sample=5), r"^fit_sample=5 is fewer than the 12 points n_clusters=12"),
    (lambda: MiniBatchKMeansClusterer(12, fit_sample=5), r"^fit_sample=5 is fewer than the 12 points"),
    (lambda: HDBSCANClusterer(fit_sample=20), r"^fit_sample=20 is fewer than the 40 points min_cluster_size=40"),
    (lambda: HDBSCANClusterer(min_samples=30, fit_sample=20), r"^fit_sample=20 is fewer than the 30 points min_samp"),
    # seeds the generators refuse, with room for the seeds of further votes
    (lambda: KMeansClusterer(seed=-1), r"^seed=-1 is out of range; allowed \[0, 4294967295\]$"),
    (lambda: KMeansClusterer(seed=2 ** 32 - 2, n_votes=3),
     r"^seed=4294967294 is out of range; allowed \[0, 4294967293\]"),
    (lambda: GaussianMixtureClusterer(seed=1.5), r"^seed=1.5 must be an integer$"),
    (lambda: AutoKClusterer(KMeansClusterer(), seed=-3), r"^seed=-3 is out of range"),
    (lambda: KMeansClusterer(n_clusters=float("inf")), r"^n_clusters=inf must be an integer"),
    (lambda: DBSCANClusterer(eps=float("inf")), r"^eps=inf is not finite"),
])
def test_bad_parameters(make, match):
    with pytest.raises(LabError, match=match):
        make()


@pytest.mark.parametrize("clusterer", [GaussianMixtureClusterer(n_clusters=50, fit_sample=None),
                                       SLICClusterer(n_segments=50)], ids=["gmm", "slic"])
def test_more_clusters_than_pixels(clusterer):
    with pytest.raises(LabError, match=r"is larger than the 9 pixels"):
        clusterer.fit_predict(np.zeros((3, 3, 2), np.float32))


@pytest.mark.parametrize("clusterer, match", [
    (HDBSCANClusterer(fit_sample=None), r"^min_cluster_size=40 is more than the 25 pixels of an image"),
    (HDBSCANClusterer(min_cluster_size=5, min_samples=30, fit_sample=None), r"^min_samples=30 is more than the 25"),
], ids=["min_cluster_size", "min_samples"])
def test_hdbscan_on_a_frame_smaller_than_its_cluster_is_one_line(clusterer, match):
    with pytest.raises(LabError, match=match) as caught:
        clusterer.fit_predict(np.random.default_rng(0).normal(size=(5, 5, 3)).astype(np.float32))
    assert caught.value.key in ("min_cluster_size", "min_samples")


def test_mean_shift_gives_a_frame_of_one_colour_one_cluster():
    labels = MeanShiftClusterer(fit_sample=None).fit_predict(np.zeros((12, 16, 3), np.float32))
    assert labels.shape == (12, 16) and not labels.any()


def three_blobs(h=24, w=36):
    feats = np.zeros((h, w, 2), np.float32)
    feats[:, w // 3:2 * w // 3, 0] = 5.0
    feats[:, 2 * w // 3:, 1] = 5.0
    return feats + np.random.default_rng(0).normal(0, 0.05, feats.shape).astype(np.float32)


def test_elbow_of_a_sharp_curve():
    assert elbow([2, 3, 4, 5, 6], [100, 10, 8, 7, 6]) == 3
    assert elbow([2, 3], [5, 1]) == 2


@pytest.mark.parametrize("criterion", ["silhouette", "elbow"])
def test_auto_k_finds_three_blobs_and_records_the_curve(criterion):
    auto = AutoKClusterer(KMeansClusterer(n_clusters=2, fit_sample=None, seed=0), k_values=[2, 3, 4, 5, 6],
                          criterion=criterion, silhouette_sample=500)
    labels = auto.fit_predict(three_blobs())
    assert len(np.unique(labels)) == 3 and auto.fit_metrics["chosen_k"] == 3
    assert {f"inertia_k{k}" for k in (2, 3, 4, 5, 6)} <= set(auto.fit_metrics)
    assert auto.clusterer.n_clusters == 2  # the wrapped clusterer is not altered


def test_auto_k_without_the_inertia_curve_picks_the_same_k():
    settings = dict(k_values=[2, 3, 4, 5, 6], silhouette_sample=300, seed=2)
    full = AutoKClusterer(KMeansClusterer(n_clusters=2, fit_sample=200, seed=0), **settings)
    lean = AutoKClusterer(KMeansClusterer(n_clusters=2, fit_sample=200, seed=0), **settings, inertia_curve=False)
    assert np.array_equal(full.fit_predict(three_blobs()), lean.fit_predict(three_blobs()))
    assert lean.fit_metrics["chosen_k"] == full.fit_metrics["chosen_k"] == 3
    assert not any(key.startswith("inertia_k") for key in lean.fit_metrics)
    assert lean.fit_metrics == {k: v for k, v in full.fit_metrics.items() if not k.startswith("inertia_k")}
    # the elbow needs the curve whatever the option says
    elbow_k = AutoKClusterer(KMeansClusterer(n_clusters=2, seed=0), k_values=[2, 3, 4], criterion="elbow",
                             inertia_curve=False)
    elbow_k.fit_predict(three_blobs())
    assert {"inertia_k2", "inertia_k3", "inertia_k4"} <= set(elbow_k.fit_metrics)


def test_auto_k_choice_reaches_the_pipeline_metrics():
    auto = AutoKClusterer(KMeansClusterer(n_clusters=2, fit_sample=None, seed=0), k_values=[2, 3])
    image = np.zeros((24, 36, 3), np.uint8)
    frame = Frame(image=image, mask=None, image_id=1, file_name="t.jpg", scale=1, n_instances=0)

    class Blobs:
        def __call__(self, frame):
            return three_blobs()

    (result,) = process_frames([frame], Blobs(), auto, PostprocessChain({}))
    assert result.metrics["chosen_k"] == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"criterion": "gap"}, r"criterion='gap'"),
    ({"k_values": []}, r"k_values=\[\] is empty"),
    ({"k_values": [1, 3]}, r"k_values=1 is out of range"),
    ({"k_values": [4, 200]}, r"^k_values has k=200, more than the clusterer's fit_sample=100; use k at most 100"),
])
def test_auto_k_rejects_bad_values(kwargs, message):
    with pytest.raises(LabError, match=message):
        AutoKClusterer(KMeansClusterer(fit_sample=100), **kwargs)


def test_auto_k_needs_a_k_based_clusterer():
    with pytest.raises(LabError, match="has no n_clusters"):
        AutoKClusterer(DBSCANClusterer())


def test_superpixel_features_then_kmeans_follow_superpixels():
    feats = three_blobs()
    clusterer = SuperpixelFeatureClusterer(SLICClusterer(n_segments=30, compactness=0.1),
                                           KMeansClusterer(n_clusters=3, fit_sample=None, seed=0))
    labels = clusterer.fit_predict(feats)
    assert labels.shape == feats.shape[:2] and len(np.unique(labels)) == 3
    third = feats.shape[1] // 3
    assert len({labels[0, 0], labels[0, third + 1], labels[0, -1]}) == 3


def test_superpixel_features_pass_on_the_inner_clusterers_votes():
    feats = three_blobs() + np.random.default_rng(5).normal(0, 1.0, (24, 36, 2)).astype(np.float32)
    slic = SLICClusterer(n_segments=30, compactness=10.0)
    voting = SuperpixelFeatureClusterer(slic, KMeansClusterer(n_clusters=4, fit_sample=None, seed=7, n_votes=3))
    labels = voting.fit_predict(feats)
    runs = [SuperpixelFeatureClusterer(slic, KMeansClusterer(n_clusters=4, fit_sample=None, seed=7 + run))
            .fit_predict(feats) for run in range(3)]
    np.testing.assert_array_equal(labels, runs[0])
    assert len(voting.fit_members) == 2
    for member, run in zip(voting.fit_members, runs[1:]):
        np.testing.assert_array_equal(member, run)
    voting.clusterer.n_clusters = 1000  # more than the superpixels: the superpixels are the labels, no votes
    voting.fit_predict(feats)
    assert voting.fit_members == []


def test_superpixel_features_keep_noise():
    feats = three_blobs()
    clusterer = SuperpixelFeatureClusterer(SLICClusterer(n_segments=30, compactness=0.1),
                                           DBSCANClusterer(eps=0.01, min_samples=50, fit_sample=None))
    assert (clusterer.fit_predict(feats) == -1).all()


def test_kmeans_votes_run_the_next_seeds_and_leave_their_label_maps():
    feats = np.random.default_rng(3).normal(size=(20, 24, 3)).astype(np.float32)
    voting = KMeansClusterer(n_clusters=4, fit_sample=100, seed=7, n_votes=3)
    labels = voting.fit_predict(feats)
    runs = [KMeansClusterer(n_clusters=4, fit_sample=100, seed=7 + run).fit_predict(feats) for run in range(3)]
    np.testing.assert_array_equal(labels, runs[0])
    assert len(voting.fit_members) == 2
    for member, run in zip(voting.fit_members, runs[1:]):
        np.testing.assert_array_equal(member, run)
    assert not np.array_equal(runs[1], runs[2])
    single = KMeansClusterer(n_clusters=4, fit_sample=100, seed=7)
    single.fit_predict(feats)
    assert single.fit_members == []


def test_auto_k_passes_on_the_chosen_ks_votes():
    auto = AutoKClusterer(KMeansClusterer(n_clusters=2, fit_sample=None, seed=0, n_votes=3), k_values=[2, 3])
    auto.fit_predict(three_blobs())
    assert auto.fit_metrics["chosen_k"] == 3
    assert len(auto.fit_members) == 2 and all(len(np.unique(member)) == 3 for member in auto.fit_members)


def test_the_pipeline_keeps_the_pixels_most_runs_masks_hold():
    first, second, third = (np.zeros((6, 8), np.int64) for _ in range(3))
    first[1:4, 1:3] = 1
    second[1:5, 1:3] = 1
    third[2:5, 2:7] = 1

    class Runs:
        def fit_predict(self, features):
            self.fit_members = [second, third]
            return first

    def players(labels, image):
        return PlayerMask(labels == 1, *connected_components(labels == 1))

    frame = Frame(image=np.zeros((6, 8, 3), np.uint8), mask=second == 1, image_id=1, file_name="t.jpg", scale=1,
                  n_instances=1)
    (result,) = process_frames([frame], lambda f: np.zeros((6, 8, 2), np.float32), Runs(), players)
    expected = (first == 1).astype(int) + (second == 1) + (third == 1) >= 2
    np.testing.assert_array_equal(result.player.mask, expected)
    assert result.metrics["n_components"] == 1.0
    # the label map, and the metrics of label maps, stay the first run's
    np.testing.assert_array_equal(result.labels, first)
    assert result.metrics["oracle_dice"] == pytest.approx(2 * 6 / (6 + 8))
