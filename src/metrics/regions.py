"""Scores of connected regions: blobs of the ground truth, and regions of each cluster.

Numbers only: no config, no tracking.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import measure


def blob_recall(pred: np.ndarray, truth: np.ndarray, *, min_cover: float = 0.5, connectivity: int = 2) -> float:
    """Fraction of ground-truth blobs that ``pred`` covers at least ``min_cover`` of.

    A dropped player shows here as a number, where Dice only falls by his
    share of the pixels.

    Parameters
    ----------
    pred, truth : (H, W) bool ndarray
    min_cover : float, default 0.5
        Share of a blob's pixels that must be predicted for it to count as found.
    connectivity : {1, 2}, default 2
        How ground-truth pixels join into blobs (2: corners too).

    Returns
    -------
    float
        In [0, 1]; NaN for a frame without players.
    """
    structure = ndi.generate_binary_structure(2, connectivity)
    blobs, n = ndi.label(np.asarray(truth, dtype=bool), structure=structure)
    if n == 0:
        return float("nan")
    sizes = np.bincount(blobs.ravel(), minlength=n + 1)[1:]
    covered = np.bincount(blobs[np.asarray(pred, dtype=bool)], minlength=n + 1)[1:]
    return float(np.mean(covered >= min_cover * sizes))


def region_oracle_mask(labels: np.ndarray, truth: np.ndarray, *, connectivity: int = 1) -> np.ndarray:
    """The connected regions of each cluster (noise included) that are mostly player, as one mask.

    The best any rule that keeps or drops whole regions of this label map can
    do: it separates a clustering problem (no region matches a player) from a
    selection problem (the regions are there, the rule drops them). It uses
    the ground truth and is a diagnostic, not a method.

    Parameters
    ----------
    labels : (H, W) int ndarray, -1 = noise
    truth : (H, W) bool ndarray
    connectivity : {1, 2}, default 1
        How pixels of one cluster join into a region.

    Returns
    -------
    (H, W) bool ndarray
    """
    regions = measure.label(np.asarray(labels) + 1, background=-1, connectivity=connectivity)
    n = int(regions.max()) + 1
    sizes = np.bincount(regions.ravel(), minlength=n)
    players = np.bincount(regions[np.asarray(truth, dtype=bool)], minlength=n)
    return (2 * players > sizes)[regions]


__all__ = ["blob_recall", "region_oracle_mask"]
