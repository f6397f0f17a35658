import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from src.clustering import KMeansClusterer, inertia, n_clusters, objectives, silhouette
from src.errors import LabError


def two_region_features(h=10, w=12):
    feats = np.zeros((h, w, 2), np.float32)
    feats[:, w // 2:, 0] = 5.0
    feats += np.random.default_rng(0).normal(0, 0.05, feats.shape).astype(np.float32)
    return feats


@pytest.mark.parametrize("fit_sample", [None, 50])
def test_kmeans_separates_two_regions(fit_sample):
    feats = two_region_features()
    labels = KMeansClusterer(n_clusters=2, fit_sample=fit_sample, seed=3).fit_predict(feats)
    assert labels.shape == (10, 12)
    assert len(np.unique(labels[:, :6])) == 1 and len(np.unique(labels[:, 6:])) == 1
    assert labels[0, 0] != labels[0, -1]


def test_kmeans_is_deterministic_for_a_seed():
    feats = np.random.default_rng(1).normal(size=(20, 20, 3)).astype(np.float32)
    a = KMeansClusterer(n_clusters=5, seed=7).fit_predict(feats)
    b = KMeansClusterer(n_clusters=5, seed=7).fit_predict(feats)
    assert np.array_equal(a, b)


def test_more_clusters_than_pixels():
    with pytest.raises(LabError, match=r"n_clusters=12 is larger than the 9 pixels"):
        KMeansClusterer(n_clusters=12, fit_sample=None).fit_predict(np.zeros((3, 3, 2), np.float32))


@pytest.mark.parametrize("kwargs, match", [
    ({"n_clusters": 1}, r"n_clusters=1 is out of range"),
    ({"n_clusters": 2.5}, r"n_clusters=2.5 must be an integer"),
    ({"n_init": 0}, r"n_init=0 is out of range"),
    ({"n_clusters": 10, "fit_sample": 5}, r"fit_sample=5 is fewer than the 10 points n_clusters=10 needs"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(LabError, match=match):
        KMeansClusterer(**kwargs)


def test_inertia_by_hand():
    feats = np.array([[[0.0], [2.0], [10.0], [14.0]]], np.float32)   # (1, 4, 1)
    labels = np.array([[0, 0, 1, 1]])
    assert inertia(feats, labels) == pytest.approx(1 + 1 + 4 + 4)


def test_inertia_ignores_noise():
    feats = np.array([[[0.0], [2.0], [100.0]]], np.float32)
    assert inertia(feats, np.array([[0, 0, -1]])) == pytest.approx(2.0)


def test_silhouette_undefined_for_one_cluster_and_high_for_separated():
    feats = two_region_features()
    assert np.isnan(silhouette(feats, np.zeros((10, 12), int)))
    labels = (np.arange(12)[None, :] >= 6).repeat(10, 0).astype(int)
    assert silhouette(feats, labels, sample_size=50, seed=0) > 0.9


def test_n_clusters_skips_noise():
    assert n_clusters(np.array([[-1, 0, 3, 3]])) == 2


# distances a row at a time, 7 of the 300 rows (the last block short), all rows at once
@pytest.mark.parametrize("block", [1, 7 * 300, 300 * 300])
@pytest.mark.parametrize("n_labels", [2, 5, 12])
def test_silhouette_equals_scikit_learn(n_labels, block, monkeypatch):
    monkeypatch.setattr(objectives, "DISTANCE_BLOCK", block)
    rng = np.random.default_rng(n_labels)
    feats = rng.normal(size=(20, 15, 4)).astype(np.float32)
    labels = rng.integers(0, n_labels, size=(20, 15))
    labels[0, 0] = n_labels  # a one-pixel cluster, whose coefficient is 0 by convention
    expected = silhouette_score(feats.reshape(-1, 4).astype(np.float64), labels.reshape(-1))
    assert silhouette(feats, labels, sample_size=10_000) == pytest.approx(expected, abs=1e-6)


def test_silhouette_sample_is_seeded_and_skips_noise():
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 40, 3)).astype(np.float32)
    labels = rng.integers(-1, 4, size=(40, 40))
    first = silhouette(feats, labels, sample_size=300, seed=7)
    assert first == silhouette(feats, labels, sample_size=300, seed=7)
    assert first != silhouette(feats, labels, sample_size=300, seed=8)
    kept = labels >= 0
    assert silhouette(feats, labels, sample_size=10_000) == pytest.approx(
        silhouette_score(feats[kept].astype(np.float64), labels[kept]), abs=1e-6)
