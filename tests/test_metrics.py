import numpy as np
import pytest

from src.metrics import dice, iou, overlap_counts, pooled_scores


def masks(pred_cells, truth_cells, shape=(4, 4)):
    pred, truth = np.zeros(shape, bool), np.zeros(shape, bool)
    for r, c in pred_cells:
        pred[r, c] = True
    for r, c in truth_cells:
        truth[r, c] = True
    return pred, truth


@pytest.mark.parametrize("pred_cells, truth_cells, expected_dice, expected_iou", [
    ([(0, 0), (0, 1)], [(0, 0), (0, 1)], 1.0, 1.0),
    ([(0, 0), (0, 1)], [(0, 1), (0, 2)], 0.5, 1 / 3),
    ([(0, 0)], [(3, 3)], 0.0, 0.0),
    ([], [], 1.0, 1.0),
    ([(1, 1)], [], 0.0, 0.0),
    ([(0, 0), (0, 1), (0, 2)], [(0, 0)], 0.5, 1 / 3),
])
def test_dice_and_iou_by_hand(pred_cells, truth_cells, expected_dice, expected_iou):
    pred, truth = masks(pred_cells, truth_cells)
    assert dice(pred, truth) == pytest.approx(expected_dice)
    assert iou(pred, truth) == pytest.approx(expected_iou)


def test_pooled_weights_images_by_pixels():
    small = overlap_counts(*masks([(0, 0)], [(0, 0)]))          # perfect, 1 pixel
    big = overlap_counts(*masks([(r, 0) for r in range(4)], [(r, 1) for r in range(4)]))  # disjoint, 8 pixels
    pooled = pooled_scores([small, big])
    assert pooled["dice_pooled"] == pytest.approx(2 * 1 / (2 * 1 + 4 + 4))
    assert pooled["iou_pooled"] == pytest.approx(1 / 9)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((2, 2), bool), np.zeros((3, 2), bool))


def test_summary_counts_frames_that_lost_most_of_their_players():
    from src.pipeline import ImageResult, lower_is_better, summarize

    def result(dice):
        return ImageResult(frame=None, labels=None, player=None, metrics={"dice": dice, "tp": 1, "fp": 0, "fn": 0})

    summary = summarize([result(d) for d in (0.9, 0.29, 0.3, 0.0)])
    assert summary["frames_dice_below_0.3"] == 2
    assert lower_is_better("frames_dice_below_0.3")
    unlabelled = ImageResult(frame=None, labels=None, player=None, metrics={"n_components": 3})
    assert "frames_dice_below_0.3" not in summarize([unlabelled])
