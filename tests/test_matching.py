"""Hungarian-matched mean IoU and the oracle player mask, on hand-made label maps."""

import numpy as np
import pytest

from src.metrics import confusion, dice, hungarian_miou, oracle_mask

TRUTH = np.array([[0, 0, 1, 1],
                  [0, 0, 1, 1],
                  [0, 0, 0, 0]], dtype=bool)


def test_confusion_counts_every_cluster_class_pair():
    labels = np.array([[5, 5, 5, 7], [5, 5, 7, 7], [-1, -1, -1, -1]])
    counts, clusters, classes = confusion(labels, TRUTH)
    assert clusters.tolist() == [-1, 5, 7] and classes.tolist() == [0, 1]
    assert counts.tolist() == [[4, 0], [4, 1], [0, 3]]


@pytest.mark.parametrize("labels, expected", [
    # the same partition under any cluster names scores 1
    (np.where(TRUTH, 9, 3), 1.0),
    (np.where(TRUTH, -1, 0), 1.0),
    # one cluster for everything: background matched (IoU 8/12), player left without a cluster (0)
    (np.zeros((3, 4), int), (8 / 12 + 0) / 2),
    # player split in two: the better half matches (IoU 2/4), background exact
    (np.array([[0, 0, 1, 2], [0, 0, 1, 2], [0, 0, 0, 0]]), (1 + 2 / 4) / 2),
])
def test_hungarian_miou(labels, expected):
    assert hungarian_miou(labels, TRUTH) == pytest.approx(expected)


def test_hungarian_matching_is_one_to_one():
    # two clusters both mostly background: only one may take the background class
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 2]])
    counts, _, _ = confusion(labels, TRUTH)
    assert counts[0, 0] > 0 and counts[2, 0] > 0
    # background <- cluster 0 (IoU 7/8), player <- cluster 1 (IoU 4/4); cluster 2 unmatched
    assert hungarian_miou(labels, TRUTH) == pytest.approx((7 / 8 + 1) / 2)


def test_oracle_mask_takes_clusters_that_are_mostly_player():
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 2], [0, 0, 0, 2]])
    mask = oracle_mask(labels, TRUTH)
    # cluster 1 is all player; cluster 2 is one player pixel of two: not a majority
    assert mask.tolist() == [[False, False, True, True], [False, False, True, False], [False] * 4]
    assert dice(mask, TRUTH) == pytest.approx(2 * 3 / (3 + 4))
    assert labels.tolist()[1][3] == 2   # input untouched


def test_shapes_must_match():
    with pytest.raises(ValueError, match=r"label map shape \(2, 2\) differs from ground truth shape \(3, 4\)"):
        hungarian_miou(np.zeros((2, 2), int), TRUTH)
