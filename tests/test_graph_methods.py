"""Graph methods on tiny synthetic images: normalized cuts of superpixels, GrabCut refinement of the mask."""

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy import sparse
from skimage import graph

from src.clustering import NormalizedCutClusterer
from src.clustering.ncut import normalized_cut, similarity_graph
from src.errors import LabError
from src.postprocess import GrabCutRefine, MaskState

GREEN, RED = (40, 130, 40), (200, 30, 30)


def halves(h=24, w=32, channels=3):
    """Features of two flat halves 5 apart in the first channel, with a little noise."""
    feats = np.zeros((h, w, channels), np.float32)
    feats[:, w // 2:, 0] = 5.0
    return feats + np.random.default_rng(0).normal(0, 0.05, feats.shape).astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3, 5, 8])
def test_ncut_separates_two_halves_and_keeps_each_whole(channels):
    labels = NormalizedCutClusterer(n_segments=24).fit_predict(halves(channels=channels))
    left, right = labels[:, :16], labels[:, 16:]
    assert labels.shape == (24, 32) and labels.dtype == np.int64
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1 and left[0, 0] != right[0, 0]


def test_ncut_labels_are_consecutive_from_zero_and_repeatable():
    feats = np.zeros((30, 40, 5), np.float32)
    feats[:, 14:, 1] = 3.0
    feats[10:20, 25:32] = (0.0, 0.0, 4.0, 2.0, 0.0)     # a block in the right part
    feats += np.random.default_rng(3).normal(0, 0.1, feats.shape).astype(np.float32)
    before = feats.copy()
    labels = NormalizedCutClusterer(n_segments=60).fit_predict(feats)
    assert labels.shape == (30, 40) and labels.dtype == np.int64
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1)) and labels.max() >= 2
    assert len({labels[0, 0], labels[0, -1], labels[15, 28]}) == 3
    assert np.array_equal(labels, NormalizedCutClusterer(n_segments=60).fit_predict(feats))
    assert np.array_equal(feats, before)


@pytest.mark.parametrize("shape, n_segments", [((20, 20, 3), 400), ((6, 6, 2), 36), ((1, 2, 3), 2)],
                         ids=["flat", "as many segments as pixels", "two pixels"])
def test_ncut_of_a_flat_image_gives_a_label_map(shape, n_segments):
    labels = NormalizedCutClusterer(n_segments=n_segments).fit_predict(np.zeros(shape, np.float32))
    assert labels.shape == shape[:2] and labels.dtype == np.int64
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))


@pytest.mark.parametrize("weights, n_parts", [(np.zeros((1, 1)), 1), (np.zeros((3, 3)), 3),
                                              (np.ones((2, 2)) - np.eye(2), 1)],
                         ids=["one node", "no edges", "two alike nodes"])
def test_normalized_cut_of_tiny_graphs(weights, n_parts):
    parts = normalized_cut(sparse.csr_matrix(weights), thresh=0.3, num_cuts=10)
    assert parts.dtype == np.int64 and sorted(set(parts)) == list(range(n_parts)) and len(parts) == len(weights)


def test_ncut_with_fewer_superpixels_than_asked_still_labels_every_pixel():
    feats = halves(8, 8)                              # 64 pixels, 64 superpixels asked
    labels = NormalizedCutClusterer(n_segments=64).fit_predict(feats)
    assert labels.shape == (8, 8) and labels.min() == 0
    assert np.array_equal(np.unique(labels), np.arange(labels.max() + 1))


def test_similarity_graph_matches_scikit_image_for_three_channels():
    image = np.random.default_rng(1).random((20, 24, 3))
    segments = np.repeat(np.repeat(np.arange(12).reshape(3, 4), 7, axis=0)[:20], 6, axis=1)
    ours = similarity_graph(image, segments, sigma=0.3).toarray()
    rag = graph.rag_mean_color(image, segments, connectivity=2, mode="similarity", sigma=0.3 ** 2)
    theirs = np.zeros_like(ours)
    for a, b, data in rag.edges(data=True):
        theirs[a, b] = theirs[b, a] = data["weight"]
    assert np.allclose(ours, theirs) and (ours > 0).sum() == 2 * rag.number_of_edges()


def test_normalized_cut_by_hand():
    # two triangles joined by one weak edge, and a node joined to nothing
    weights = np.zeros((7, 7))
    for a, b in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]:
        weights[a, b] = weights[b, a] = 1.0
    weights[2, 3] = weights[3, 2] = 0.01
    parts = normalized_cut(sparse.csr_matrix(weights), thresh=0.1, num_cuts=10)
    assert len({parts[0], parts[1], parts[2]}) == 1 and len({parts[3], parts[4], parts[5]}) == 1
    assert len({parts[0], parts[3], parts[6]}) == 3 and sorted(set(parts)) == [0, 1, 2]
    assert len(set(normalized_cut(sparse.csr_matrix(weights[:6, :6]), thresh=0.001, num_cuts=10))) == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"n_segments": 1}, r"^n_segments=1 is out of range; allowed \[2, inf\]$"),
    ({"n_segments": 40.0}, r"^n_segments=40.0 must be an integer$"),
    ({"compactness": 0}, r"^compactness=0 is out of range"),
    ({"min_size_factor": 1.5}, r"^min_size_factor=1.5 is out of range; allowed \[0, 1\]$"),
    ({"sigma": 0.0}, r"^sigma=0.0 is out of range; allowed \(0, inf\]$"),
    ({"thresh": 0}, r"^thresh=0 is out of range; allowed \(0, 2\]$"),
    ({"thresh": 3.0}, r"^thresh=3.0 is out of range"),
    ({"num_cuts": 0}, r"^num_cuts=0 is out of range"),
    ({"sigma": "wide"}, r"^sigma='wide' must be a number$"),
])
def test_ncut_bad_parameters(kwargs, match):
    with pytest.raises(LabError, match=match):
        NormalizedCutClusterer(**kwargs)


def test_ncut_more_segments_than_pixels():
    with pytest.raises(LabError, match=r"^n_segments=400 is larger than the 100 pixels"):
        NormalizedCutClusterer().check_input(100)
    with pytest.raises(LabError, match=r"^n_segments=50 is larger than the 9 pixels"):
        NormalizedCutClusterer(n_segments=50).fit_predict(np.zeros((3, 3, 2), np.float32))


def player_on_grass(h=40, w=48):
    """A red 16x7 player on noisy green grass; returns (image, truth)."""
    rng = np.random.default_rng(0)
    image = np.array(GREEN) + rng.normal(0, 6, (h, w, 3))
    truth = np.zeros((h, w), bool)
    truth[12:28, 20:27] = True
    image[truth] = np.array(RED) + rng.normal(0, 6, (truth.sum(), 3))
    return np.clip(image, 0, 255).astype(np.uint8), truth


def dice(a, b):
    return 2 * (a & b).sum() / (a.sum() + b.sum())


@pytest.mark.parametrize("with_field", [True, False], ids=["field", "no field"])
def test_grabcut_shrinks_a_mask_grown_into_the_grass(with_field):
    image, truth = player_on_grass()
    grown = ndi.binary_dilation(truth, iterations=3)      # grass pixels among the candidates
    state = MaskState(labels=np.zeros(truth.shape, int), image=image, mask=grown,
                      field=~grown if with_field else None)
    refined = GrabCutRefine()(state).mask
    assert refined.dtype == bool and refined.shape == truth.shape
    assert dice(refined, truth) > dice(grown, truth) + 0.2 and dice(refined, truth) > 0.9


def test_grabcut_handles_each_blob_in_its_own_box_and_keeps_tiny_ones():
    image, truth = player_on_grass(40, 96)
    image[:, 48:] = image[:, :48]                       # a second player, 48 columns on
    truth[:, 48:] = truth[:, :48]
    grown = ndi.binary_dilation(truth, iterations=3)
    grown[2:4, 2:4] = True                              # 4 pixels: too few for GrabCut's colour model
    refined = GrabCutRefine(padding=0.5)(MaskState(labels=np.zeros(truth.shape, int), image=image,
                                                   mask=grown, field=~grown)).mask
    assert refined[2:4, 2:4].all() and refined[:5, :5].sum() == 4
    refined[:5, :5] = False
    assert dice(refined[:, :48], truth[:, :48]) > 0.9 and dice(refined[:, 48:], truth[:, 48:]) > 0.9


def test_grabcut_is_repeatable_and_leaves_its_input_alone():
    image, truth = player_on_grass()
    grown = ndi.binary_dilation(truth, iterations=3)
    field = ~grown
    labels = np.zeros(truth.shape, int)
    state = MaskState(labels=labels, image=image, mask=grown, field=field)
    before = [a.copy() for a in (labels, image, grown, field)]
    step = GrabCutRefine(iterations=3, seed=7)
    first, second = step(state), step(state)
    assert np.array_equal(first.mask, second.mask)
    assert all(np.array_equal(a, b) for a, b in zip(before, (labels, image, grown, field)))
    assert first.labels is labels and first.field is field and first.image is image


def test_grabcut_of_an_empty_mask_is_empty_without_calling_opencv(monkeypatch):
    image, truth = player_on_grass()
    state = MaskState(labels=np.zeros(truth.shape, int), image=image, mask=np.zeros(truth.shape, bool))

    def refuse(*args, **kwargs):
        raise AssertionError("cv2.grabCut was called")

    monkeypatch.setattr(cv2, "grabCut", refuse)
    out = GrabCutRefine()(state)
    assert out is state and not out.mask.any()


def test_grabcut_leaves_opencv_threads_as_they_were():
    image, truth = player_on_grass()
    before = cv2.getNumThreads()
    GrabCutRefine()(MaskState(labels=np.zeros(truth.shape, int), image=image,
                              mask=ndi.binary_dilation(truth, iterations=2)))
    assert cv2.getNumThreads() == before


@pytest.mark.parametrize("kwargs, match", [
    ({"padding": -0.5}, r"^padding=-0.5 is out of range; allowed \[0, inf\]$"),
    ({"padding": "wide"}, r"^padding='wide' must be a number$"),
    ({"iterations": 0}, r"^iterations=0 is out of range; allowed \[1, inf\]$"),
    ({"iterations": 2.5}, r"^iterations=2.5 must be an integer$"),
    ({"seed": -1}, r"^seed=-1 is out of range"),
])
def test_grabcut_bad_parameters(kwargs, match):
    with pytest.raises(LabError, match=match):
        GrabCutRefine(**kwargs)
