"""Unsupervised objectives of a labelling, computed on the clusterer's own features."""

from __future__ import annotations

import numpy as np

from src.clustering.distances import DISTANCE_BLOCK, squared_distance_blocks
from src.labels import dense_labels


def _valid(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = features.reshape(-1, features.shape[-1])
    labels = labels.reshape(-1)
    if labels.size and labels.min() >= 0:
        return flat, labels
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
    # one contiguous row per channel: the per-channel sums below read them without a strided copy each
    channels = np.ascontiguousarray(flat.T, dtype=np.float64)
    counts = np.bincount(labels)
    present = counts > 0
    # sum ||x - mean||^2 = sum ||x||^2 - sum_k ||sum_k||^2 / n_k, without materializing per-pixel means
    sums = np.stack([np.bincount(labels, weights=channel) for channel in channels], axis=1)
    between = ((sums[present] ** 2).sum(axis=1) / counts[present]).sum()
    return float(max((channels ** 2).sum() - between, 0.0))


def silhouette(features: np.ndarray, labels: np.ndarray, sample_size: int = 2000, seed: int = 0) -> float:
    """Mean silhouette coefficient on a seeded sample of non-noise pixels.

    The same definition as ``sklearn.metrics.silhouette_score`` (a lone
    point's coefficient is 0), computed with matrix products for the
    per-cluster distance sums: scikit-learn loops over samples in Python,
    which made this metric the slowest stage of a run. Tests hold the two
    equal. O(sample_size^2 * C) time; the distances are made a block of rows
    at a time (``DISTANCE_BLOCK``), so memory is O(sample_size * k).

    Returns NaN when fewer than two clusters remain, where it is undefined.
    """
    flat, labels = _valid(features, labels)
    n_labels = np.count_nonzero(np.bincount(labels)) if len(labels) else 0
    if n_labels < 2 or n_labels >= len(labels):
        return float("nan")
    if sample_size < len(labels):
        pick = silhouette_pick(len(labels), sample_size, seed)
        flat, labels = flat[pick], labels[pick]
    _, labels = dense_labels(labels)
    counts = np.bincount(labels)
    if len(counts) < 2:
        return float("nan")
    rows = np.arange(len(labels))
    members = np.zeros((len(labels), len(counts)), dtype=np.float32)
    members[rows, labels] = 1.0
    # single precision halves the memory traffic that dominates; the mean moves by about 1e-7
    mean_to_cluster = _cluster_distance_sums(flat.astype(np.float32), members).astype(np.float64)
    own = counts[labels]
    intra = mean_to_cluster[rows, labels] / np.maximum(own - 1, 1)
    mean_to_cluster /= counts
    mean_to_cluster[rows, labels] = np.inf
    inter = mean_to_cluster.min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (inter - intra) / np.maximum(intra, inter)
    scores[own == 1] = 0.0
    return float(np.nan_to_num(scores).mean())


def silhouette_pick(n_points: int, sample_size: int, seed: int = 0) -> np.ndarray:
    """The (sample_size,) indices, in sampling order, of the points that ``silhouette`` scores among
    ``n_points`` non-noise points when ``sample_size < n_points``: a caller that gathers only these points and
    passes them all gets the same score without labelling the rest."""
    return np.random.default_rng(seed).choice(n_points, size=sample_size, replace=False)


def _cluster_distance_sums(points: np.ndarray, members: np.ndarray) -> np.ndarray:
    """(n, k) sums of the Euclidean distances from each of ``points`` (n, C) to the points of each cluster,
    ``members`` (n, k) being one-hot cluster membership."""
    sums = np.empty((len(points), members.shape[1]), dtype=members.dtype)
    for start, stop, distances in squared_distance_blocks(points, points, DISTANCE_BLOCK):
        np.maximum(distances, 0.0, out=distances)
        np.sqrt(distances, out=distances)
        # a point's distance to itself, which rounding leaves a little above 0
        distances[np.arange(stop - start), np.arange(start, stop)] = 0.0
        np.matmul(distances, members, out=sums[start:stop])
    return sums


def n_clusters(labels: np.ndarray) -> int:
    """Number of clusters, noise (-1) not counted."""
    kept = labels[labels >= 0]
    return int(np.count_nonzero(np.bincount(kept.reshape(-1)))) if kept.size else 0
