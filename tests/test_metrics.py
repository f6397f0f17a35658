import numpy as np
import pytest

from src.metrics import dice, iou, outline_error_share, overlap_counts, pooled_scores


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
    assert pooled["precision_pooled"] == pytest.approx(1 / 5)
    assert pooled["recall_pooled"] == pytest.approx(1 / 5)


@pytest.mark.parametrize("pred_cells, truth_cells, precision, recall", [
    ([(0, 0), (0, 1), (1, 0), (1, 1)], [(0, 0)], 1 / 4, 1.0),     # too big: precision falls
    ([(0, 0)], [(0, 0), (0, 1), (1, 0), (1, 1)], 1.0, 1 / 4),     # misses most: recall falls
    ([], [(0, 0)], 0.0, 0.0),                                      # nothing predicted, something to find
    ([], [], 1.0, 1.0),                                            # nothing either way
    ([(0, 0)], [], 0.0, 1.0),                                      # something predicted, nothing to find
])
def test_pooled_precision_and_recall_tell_a_big_mask_from_a_small_one(pred_cells, truth_cells, precision, recall):
    pooled = pooled_scores([overlap_counts(*masks(pred_cells, truth_cells))])
    assert pooled["precision_pooled"] == pytest.approx(precision)
    assert pooled["recall_pooled"] == pytest.approx(recall)


def test_outline_error_share_tells_an_outline_a_pixel_off_from_a_missed_player():
    truth = np.zeros((12, 12), bool)
    truth[2:6, 2:4] = True                     # a player
    truth[8:11, 8:10] = True                   # another, far from the first
    shifted = np.roll(truth, 1, axis=1)        # both found, outlines a pixel off
    before = shifted.copy(), truth.copy()
    assert outline_error_share(shifted, truth) == pytest.approx(1.0)
    assert (shifted == before[0]).all() and (truth == before[1]).all()
    one_missed = truth.copy()
    one_missed[8:11, 8:10] = False             # the second player dropped whole
    assert outline_error_share(one_missed, truth) == pytest.approx(0.0)
    both = shifted.copy()
    both[8:11, :] = False                      # the first off by a pixel, the second dropped
    assert outline_error_share(both, truth) == pytest.approx(8 / 14)
    assert np.isnan(outline_error_share(truth, truth))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        dice(np.zeros((2, 2), bool), np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match="shape"):
        outline_error_share(np.zeros((2, 2), bool), np.zeros((3, 2), bool))


def test_summary_counts_frames_that_lost_most_of_their_players():
    from src.pipeline import ImageResult
    from src.summary import lower_is_better, summarize

    def result(dice):
        return ImageResult(frame=None, labels=None, player=None, metrics={"dice": dice, "tp": 1, "fp": 0, "fn": 0})

    summary = summarize([result(d) for d in (0.9, 0.29, 0.3, 0.0)])
    assert summary["frames_dice_below_0.3"] == 2
    assert lower_is_better("frames_dice_below_0.3")
    unlabelled = ImageResult(frame=None, labels=None, player=None, metrics={"n_components": 3})
    assert "frames_dice_below_0.3" not in summarize([unlabelled])


def test_a_running_summary_at_every_frame_is_the_summary_of_the_frames_so_far():
    from types import SimpleNamespace

    from src.summary import RunningSummary, summarize

    rng = np.random.default_rng(0)
    frames = []
    for i in range(7):
        metrics = {"silhouette": float("nan") if i == 2 else float(rng.random()), "n_components": float(i)}
        if i % 3:   # only some frames have ground truth
            tp, fp, fn = (int(v) for v in rng.integers(0, 50, 3))
            metrics.update(tp=tp, fp=fp, fn=fn, dice=2 * tp / max(2 * tp + fp + fn, 1))
        frames.append(SimpleNamespace(metrics=metrics, seconds={"load": 0.01 * i, "cluster": 0.1}))
    running = RunningSummary()
    for done, frame in enumerate(frames, 1):
        running.add(frame.metrics, frame.seconds)
        so_far = frames[:done]
        summary = running.value()
        np.testing.assert_equal(summary, summarize(so_far))   # NaN equals NaN here
        assert summary["n_frames"] == done
        assert summary["silhouette_mean"] == pytest.approx(
            np.nanmean([f.metrics["silhouette"] for f in so_far]))
        labelled = [f.metrics for f in so_far if "tp" in f.metrics]
        if labelled:
            tp, fp, fn = (sum(m[k] for m in labelled) for k in ("tp", "fp", "fn"))
            assert summary["dice_pooled"] == pytest.approx(2 * tp / (2 * tp + fp + fn))
            assert summary["precision_pooled"] == pytest.approx(tp / (tp + fp) if tp + fp else float(fn == 0))
            assert summary["recall_pooled"] == pytest.approx(tp / (tp + fn) if tp + fn else 1.0)
            assert summary["dice_mean"] == pytest.approx(np.mean([m["dice"] for m in labelled]))
        else:
            assert all(np.isnan(summary[key]) for key in ("dice_pooled", "precision_pooled", "recall_pooled",
                                                          "dice_mean"))
        assert summary["seconds_per_image"] == pytest.approx(0.1 + np.mean([f.seconds["load"] for f in so_far]))
