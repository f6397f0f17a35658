"""One image's clustering result, and clustering a list of images with or without a batched clusterer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ClusterFit:
    """Labels (H, W), the per-image values the clusterer chose (e.g. k), its per-iteration history, the
    label maps it kept at chosen iterations, and those of its further seeded runs (``n_votes``), whose
    player masks vote with that of ``labels``."""

    labels: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    members: list[np.ndarray] = field(default_factory=list)


def fit_images(clusterer, features: list[np.ndarray]) -> list[ClusterFit]:
    """Cluster each (H, W, C) array: in one call when the clusterer fits several at once (``fit_many``), else in
    turn, reading what it recorded (``fit_metrics``, ``fit_history``, ``fit_snapshots``, ``fit_members``) after
    each."""
    if hasattr(clusterer, "fit_many"):
        return clusterer.fit_many(features)
    fits = []
    for image in features:
        labels = clusterer.fit_predict(image)
        fits.append(ClusterFit(labels, dict(getattr(clusterer, "fit_metrics", {})),
                               [dict(values) for values in getattr(clusterer, "fit_history", [])],
                               dict(getattr(clusterer, "fit_snapshots", {})),
                               list(getattr(clusterer, "fit_members", []))))
    return fits
