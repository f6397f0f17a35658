"""Overlap scores of binary masks. Numbers only: no config, no tracking."""

from __future__ import annotations

import numpy as np

from src.neighbours import dilate_square


def _masks(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool arrays, after checking that they line up."""
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth shape {truth.shape}")
    return np.asarray(pred, dtype=bool), np.asarray(truth, dtype=bool)


def _counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    pred, truth = _masks(pred, truth)
    tp = int(np.count_nonzero(pred & truth))
    return tp, int(np.count_nonzero(pred & ~truth)), int(np.count_nonzero(~pred & truth))


def dice_from_counts(tp: int, fp: int, fn: int) -> float:
    """2 TP / (2 TP + FP + FN); 1.0 when both masks are empty."""
    denominator = 2 * tp + fp + fn
    return 1.0 if denominator == 0 else 2 * tp / denominator


def iou_from_counts(tp: int, fp: int, fn: int) -> float:
    """TP / (TP + FP + FN); 1.0 when both masks are empty."""
    denominator = tp + fp + fn
    return 1.0 if denominator == 0 else tp / denominator


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two (H, W) masks; 1.0 when both are empty."""
    return dice_from_counts(*_counts(pred, truth))


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two (H, W) masks; 1.0 when both are empty."""
    return iou_from_counts(*_counts(pred, truth))


def overlap_counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """True positive, false positive and false negative pixel counts."""
    tp, fp, fn = _counts(pred, truth)
    return {"tp": tp, "fp": fp, "fn": fn}


def precision_from_counts(tp: int, fp: int, fn: int) -> float:
    """TP / (TP + FP), the share of the predicted pixels that are player; with nothing predicted, 1.0 when
    there was nothing to find and 0.0 otherwise."""
    return tp / (tp + fp) if tp + fp else float(fn == 0)


def recall_from_counts(tp: int, fp: int, fn: int) -> float:
    """TP / (TP + FN), the share of the player pixels predicted; 1.0 when there are none."""
    return tp / (tp + fn) if tp + fn else 1.0


def outline_error_share(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of the wrong pixels that lie on an outline: a false positive touching the ground truth, or a
    missed pixel touching the prediction (8-neighbours).

    Near 1, the players were found and their outlines drawn a pixel off; near
    0, whole players were missed or whole false blobs kept, a matter of which
    regions were chosen.

    Parameters
    ----------
    pred, truth : (H, W) bool ndarray

    Returns
    -------
    float
        In [0, 1]; NaN when no pixel is wrong.
    """
    pred, truth = _masks(pred, truth)
    wrong = np.count_nonzero(pred ^ truth)
    if wrong == 0:
        return float("nan")
    outline = (pred & ~truth & dilate_square(truth)) | (truth & ~pred & dilate_square(pred))
    return np.count_nonzero(outline) / wrong


def pooled_scores(counts: list[dict[str, int]]) -> dict[str, float]:
    """Dice, IoU, pixel precision and pixel recall over all pixels of all images together.

    Precision and recall tell a mask that is too big (precision falls) from
    one that misses players or their edges (recall falls), which Dice alone
    does not.
    """
    tp, fp, fn = (sum(c[key] for c in counts) for key in ("tp", "fp", "fn"))
    return {"dice_pooled": dice_from_counts(tp, fp, fn), "iou_pooled": iou_from_counts(tp, fp, fn),
            "precision_pooled": precision_from_counts(tp, fp, fn), "recall_pooled": recall_from_counts(tp, fp, fn)}
