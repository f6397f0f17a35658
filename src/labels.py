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
    k = max(int(flat.max()) + 1, 0) if flat.size else 0
    noise = flat < 0
    if noise.any():
        # noise counted in a bin of its own, dropped after: gathering the other pixels' rows cost three times more
        flat = np.where(noise, k, flat)
    counts = np.bincount(flat, minlength=k + 1)[:k]
    sums = np.stack([np.bincount(flat, weights=rows[:, c], minlength=k + 1)[:k] for c in range(rows.shape[1])],
                    axis=1)
    return sums / np.maximum(counts, 1)[:, None], counts


def coordinate_means(parts: np.ndarray, n: int, *, second: bool = False) -> np.ndarray:
    """Mean pixel coordinates of each part ``1..n`` of a label map, read from the parts' pixels only.

    Parameters
    ----------
    parts : (H, W) int ndarray
        0 = background, 1..n = parts.
    n : int
    second : bool, default False
        Also the second moments.

    Returns
    -------
    (n, 2) or, with ``second``, (n, 5) float64 ndarray
        Columns row, col (then row², col², row x col); zero for a part with no pixel.
    """
    rows, cols = np.nonzero(parts)
    ids = parts[rows, cols]
    rows, cols = rows.astype(np.float64), cols.astype(np.float64)
    values = [rows, cols, rows * rows, cols * cols, rows * cols] if second else [rows, cols]
    counts = np.maximum(np.bincount(ids, minlength=n + 1)[1:n + 1], 1)
    return np.stack([np.bincount(ids, weights=v, minlength=n + 1)[1:n + 1] for v in values], axis=1) / counts[:, None]


def dense_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``labels`` and each pixel's index among them, as ``np.unique(..., return_inverse=True)``.

    Label maps hold small integers (cluster ids, -1 for noise), so a count
    per value replaces ``np.unique``'s sort, which cost more than the scores
    computed from its result. Values spread wider than the map is large fall
    back to the sort.

    Parameters
    ----------
    labels : int or bool ndarray, any shape

    Returns
    -------
    values : (K,) ndarray
        The distinct values in increasing order.
    index : ndarray of ``labels``' shape, intp
        ``values[index] == labels``.
    """
    labels = np.asarray(labels)
    dtype = labels.dtype
    if dtype.kind == "b":
        labels = labels.view(np.uint8)
    if labels.size == 0:
        return labels.reshape(-1)[:0].astype(dtype), np.zeros(labels.shape, np.intp)
    low, high = int(labels.min()), int(labels.max())
    if high - low > 4 * labels.size + 1024:
        values, index = np.unique(labels, return_inverse=True)
        return values.astype(dtype), index.reshape(labels.shape)
    offset = (labels.astype(np.intp) - low) if low else labels.astype(np.intp, copy=False)
    present = np.bincount(offset.ravel(), minlength=high - low + 1) > 0
    lookup = np.cumsum(present) - 1
    return (np.flatnonzero(present) + low).astype(dtype), lookup[offset]
