"""Per-label statistics of a label map, shared by the stages that summarise regions (clustering, post-processing)."""

from __future__ import annotations

import numpy as np


def label_means(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean value and pixel count of each label ``0..labels.max()``; negative labels (noise) are left out.

    Parameters
    ----------
    values : (..., C) ndarray
        One C-vector per pixel, e.g. (H, W, 3) colours or (H, W, C) features.
    labels : (...) int ndarray
        The label of each pixel, same leading shape as ``values``.

    Returns
    -------
    means : (K, C) float64 ndarray
        Zero for a label with no pixel.
    counts : (K,) int ndarray
    """
    flat = labels.reshape(-1)
    rows = values.reshape(flat.size, -1)
    keep = flat >= 0
    if not keep.all():
        flat, rows = flat[keep], rows[keep]
    k = int(flat.max()) + 1 if flat.size else 0
    counts = np.bincount(flat, minlength=k)
    sums = np.stack([np.bincount(flat, weights=rows[:, c], minlength=k) for c in range(rows.shape[1])], axis=1)
    return sums / np.maximum(counts, 1)[:, None], counts
