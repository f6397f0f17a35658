"""Scores of connected regions: blobs of the ground truth, and regions of each cluster.

Numbers only: no config, no tracking.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import measure


def blob_recall(pred: np.ndarray, truth: np.ndarray, *, instances: np.ndarray | None = None,
                min_cover: float = 0.5, connectivity: int = 2) -> float:
    """Fraction of ground-truth players that ``pred`` covers at least ``min_cover`` of.

    A dropped player shows here as a number, where Dice only falls by his
    share of the pixels.

    Parameters
    ----------
    pred, truth : (H, W) bool ndarray
    instances : (H, W) int ndarray, optional
        One label per annotated player (0 = none), as ``Frame.instances``: a
        player that downscaling splits into several blobs counts once, and
        touching players count apart. Without it the blobs are the connected
        parts of ``truth``.
    min_cover : float, default 0.5
        Share of a player's pixels that must be predicted for him to count as found.
    connectivity : {1, 2}, default 2
        How ground-truth pixels join into blobs without ``instances`` (2: corners too).

    Returns
    -------
    float
        In [0, 1]; NaN for a frame without players.
    """
    if instances is None:
        structure = ndi.generate_binary_structure(2, connectivity)
        instances, _ = ndi.label(np.asarray(truth, dtype=bool), structure=structure)
    n = int(instances.max())
    sizes = np.bincount(instances.ravel(), minlength=n + 1)[1:]
    covered = np.bincount(instances[np.asarray(pred, dtype=bool)], minlength=n + 1)[1:]
    present = sizes > 0
    if not present.any():
        return float("nan")
    return float(np.mean(covered[present] >= min_cover * sizes[present]))


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
