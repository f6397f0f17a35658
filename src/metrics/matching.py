"""Scores of a label map against ground truth, before any post-processing picks player clusters.

Numbers only: no config, no tracking.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from src.labels import dense_labels


def _check_shapes(labels: np.ndarray, truth: np.ndarray) -> None:
    if labels.shape != truth.shape:
        raise ValueError(f"label map shape {labels.shape} differs from ground truth shape {truth.shape}")


def confusion(labels: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel counts of every (cluster, class) pair.

    Parameters
    ----------
    labels : (H, W) int ndarray
        Cluster ids; -1 (noise) is a cluster like any other.
    truth : (H, W) int or bool ndarray
        Ground-truth class of each pixel.

    Returns
    -------
    counts : (n_clusters, n_classes) int64 ndarray
    clusters, classes : the ids of the rows and columns.
    """
    _check_shapes(labels, truth)
    clusters, cluster_index = dense_labels(labels)
    classes, class_index = dense_labels(truth)
    pair = cluster_index.ravel() * len(classes) + class_index.ravel()
    counts = np.bincount(pair, minlength=len(clusters) * len(classes)).reshape(len(clusters), len(classes))
    return counts, clusters, classes


def hungarian_miou(labels: np.ndarray, truth: np.ndarray) -> float:
    """Mean IoU over ground-truth classes after a one-to-one matching of clusters to classes.

    The matching maximises the summed IoU (``scipy.optimize.linear_sum_assignment``
    on the IoU matrix, padded with zeros when there are fewer clusters than
    classes); a class left without a cluster scores 0. This is the usual
    score of unsupervised segmentation papers, independent of what the
    clusters are called.

    Parameters
    ----------
    labels : (H, W) int ndarray
        Cluster ids, -1 (noise) included as a cluster.
    truth : (H, W) int or bool ndarray
        Ground-truth classes (here background 0, player 1).

    Returns
    -------
    float in [0, 1].
    """
    counts, _, _ = confusion(labels, truth)
    union = counts.sum(axis=1, keepdims=True) + counts.sum(axis=0, keepdims=True) - counts
    iou = counts / np.maximum(union, 1)
    n_classes = iou.shape[1]
    if iou.shape[0] < n_classes:
        iou = np.vstack([iou, np.zeros((n_classes - iou.shape[0], n_classes))])
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum() / n_classes)


def oracle_mask(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The player mask an oracle would build: every cluster whose pixels are mostly player.

    Parameters
    ----------
    labels : (H, W) int ndarray
    truth : (H, W) bool ndarray

    Returns
    -------
    (H, W) bool ndarray, a new array.
    """
    _check_shapes(labels, truth)
    clusters, index = dense_labels(labels)
    players = np.bincount(index[np.asarray(truth, dtype=bool)], minlength=len(clusters))
    sizes = np.bincount(index.ravel(), minlength=len(clusters))
    return (2 * players > sizes)[index]
