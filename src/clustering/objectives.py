"""Unsupervised objectives of a labelling, computed on the clusterer's own features."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import silhouette_score


def _valid(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = features.reshape(-1, features.shape[-1])
    labels = labels.reshape(-1)
    keep = labels >= 0
    return flat[keep], labels[keep]


def inertia(features: np.ndarray, labels: np.ndarray) -> float:
    """Within-cluster sum of squared distances to each cluster's mean.

    Defined for any labelling; noise pixels (label -1) are left out.

    Parameters
    ----------
    features : (H, W, C) ndarray
    labels : (H, W) int ndarray
    """
    flat, labels = _valid(features, labels)
    if len(labels) == 0:
        return 0.0
    flat = flat.astype(np.float64)
    counts = np.bincount(labels)
    present = counts > 0
    # sum ||x - mean||^2 = sum ||x||^2 - sum_k ||sum_k||^2 / n_k, without materializing per-pixel means
    sums = np.stack([np.bincount(labels, weights=flat[:, c]) for c in range(flat.shape[1])], axis=1)
    between = ((sums[present] ** 2).sum(axis=1) / counts[present]).sum()
    return float(max((flat ** 2).sum() - between, 0.0))


def silhouette(features: np.ndarray, labels: np.ndarray, sample_size: int = 2000, seed: int = 0) -> float:
    """Mean silhouette coefficient on a seeded sample of non-noise pixels.

    Returns NaN when fewer than two clusters remain, where it is undefined.
    """
    flat, labels = _valid(features, labels)
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels >= len(labels):
        return float("nan")
    if sample_size < len(labels):
        pick = np.random.default_rng(seed).choice(len(labels), size=sample_size, replace=False)
        flat, labels = flat[pick], labels[pick]
        if len(np.unique(labels)) < 2:
            return float("nan")
    return float(silhouette_score(flat, labels))


def n_clusters(labels: np.ndarray) -> int:
    """Number of clusters, noise (-1) not counted."""
    return int(len(np.unique(labels[labels >= 0])))
