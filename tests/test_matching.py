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


def test_blob_recall_counts_blobs_covered_at_least_half():
    from src.metrics import blob_recall
    truth = np.zeros((10, 12), bool)
    truth[1:3, 1:3] = True          # 4 px, fully found
    truth[5:7, 5:9] = True          # 8 px, 4 found: exactly half counts
    truth[8:10, 0:2] = True         # 4 px, 1 found: missed
    pred = np.zeros_like(truth)
    pred[1:3, 1:3] = True
    pred[5:7, 5:7] = True
    pred[9, 0] = True
    pred[0, 11] = True              # a false positive does not change recall
    assert blob_recall(pred, truth) == pytest.approx(2 / 3)
    assert np.isnan(blob_recall(pred, np.zeros_like(truth)))


def test_region_oracle_keeps_mostly_player_regions_of_each_cluster():
    from src.metrics import region_oracle_mask
    labels = np.zeros((6, 8), int)
    labels[:, 4:] = 1                       # cluster 1, right half
    labels[1:3, 1:3] = 1                    # cluster 1 again, a separate region on the left
    labels[4, 5] = -1                       # a noise pixel
    truth = np.zeros((6, 8), bool)
    truth[1:3, 1:3] = True                  # the left region of cluster 1 is a player
    truth[4, 5] = True                      # so is the noise pixel
    mask = region_oracle_mask(labels, truth)
    assert np.array_equal(mask, truth)      # the right half (same cluster, not a player) is left out
    assert not region_oracle_mask(labels, np.zeros_like(truth)).any()


def test_blob_recall_counts_annotated_players_not_fragments():
    from src.metrics import blob_recall
    truth = np.zeros((10, 12), bool)
    truth[1:6, 1:3] = True          # one player ...
    truth[7, 1] = True              # ... whose foot the downscale cut off
    truth[1:6, 3:6] = True          # a second, wider player touching the first
    instances = np.zeros((10, 12), int)
    instances[1:6, 1:3] = 1
    instances[7, 1] = 1
    instances[1:6, 3:6] = 2
    pred = np.zeros_like(truth)
    pred[1:6, 1:3] = True           # the first found without his foot, the second missed
    assert blob_recall(pred, truth, instances=instances) == pytest.approx(1 / 2)
    # as connected blobs: the two players are one blob, 10 of 25 px found, and the foot is a blob of its own
    assert blob_recall(pred, truth) == pytest.approx(0.0)
