"""Choosing the number of clusters per image, by silhouette or by the inertia elbow."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from src.clustering.objectives import inertia, silhouette
from src.errors import LabError, check_choice, check_range, check_seed

CRITERIA = ("silhouette", "elbow")


def elbow(ks: Sequence[int], inertias: Sequence[float]) -> int:
    """The k at the elbow of a decreasing inertia curve.

    The elbow is the point farthest below the straight line from the first to
    the last point, both axes scaled to [0, 1] (the "kneedle" rule). With
    fewer than three points the smallest k is returned.

    Parameters
    ----------
    ks : sequence of int, increasing
    inertias : sequence of float, same length
    """
    ks = np.asarray(ks, dtype=float)
    values = np.asarray(inertias, dtype=float)
    if len(ks) < 3 or values[0] == values[-1]:
        return int(ks[0])
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (values - values[-1]) / (values[0] - values[-1])
    return int(ks[np.argmax((1.0 - x) - y)])


class AutoKClusterer:
    """Run a clusterer for every k in ``k_values`` and keep the labelling the criterion prefers.

    ``silhouette`` keeps the k of the highest silhouette (on the seeded pixel
    sample); ``elbow`` keeps the k at the elbow of the inertia curve. The
    curve and the chosen k of the last image are in ``fit_metrics``, which
    the pipeline records per image. Cost: len(k_values) runs of the clusterer.

    Parameters
    ----------
    clusterer : object with ``n_clusters`` and ``fit_predict``
    k_values : sequence of int, default (4, 6, 8, 10, 12, 16)
    criterion : {"silhouette", "elbow"}, default "silhouette"
    silhouette_sample : int, default 1000
    seed : int, default 0
    inertia_curve : bool, default True
        Compute every k's inertia over all pixels, recorded in ``fit_metrics``
        as ``inertia_k<k>``. The elbow criterion always does; False spares a
        silhouette choice the pass over every pixel's features where only the
        chosen k is read (DynaSeg's stop target, on 100 features per pixel).
    """

    def __init__(self, clusterer, k_values: Sequence[int] = (4, 6, 8, 10, 12, 16), criterion: str = "silhouette",
                 silhouette_sample: int = 1000, seed: int = 0, *, inertia_curve: bool = True):
        check_choice("criterion", criterion, CRITERIA)
        if not hasattr(clusterer, "n_clusters"):
            raise LabError(f"clusterer={type(clusterer).__name__} has no n_clusters to choose; "
                           "use a k-based clusterer (kmeans, minibatch_kmeans, gmm, agglomerative)", key="clusterer")
        ks = sorted({int(k) for k in k_values})
        if not ks:
            raise LabError("k_values=[] is empty; give at least one k, e.g. [4, 8, 12]", key="k_values")
        for k in ks:
            check_range("k_values", k, 2, integer=True)
        for option in ("fit_sample", "n_segments"):
            # the points the clusterer is fitted on: it cannot make more clusters than these
            limit = getattr(clusterer, option, None)
            if limit is not None and ks[-1] > limit:
                raise LabError(f"k_values has k={ks[-1]}, more than the clusterer's {option}={limit}; use k at "
                               f"most {limit} or raise clusterer.{option}", key="k_values")
        check_range("silhouette_sample", silhouette_sample, 2, integer=True)
        check_seed("seed", seed)
        self.clusterer = clusterer
        self.k_values = ks
        self.criterion = criterion
        self.silhouette_sample = silhouette_sample
        self.seed = seed
        self.inertia_curve = inertia_curve or criterion == "elbow"
        self.fit_metrics: dict[str, float] = {}
        # the label maps of the chosen k's further seeded runs (a k-means with n_votes > 1)
        self.fit_members: list[np.ndarray] = []

    @property
    def n_clusters(self) -> int:
        return self.k_values[-1]

    def check_input(self, n_pixels: int) -> None:
        if self.k_values[-1] > n_pixels:
            raise LabError(f"k_values has k={self.k_values[-1]}, more than the {n_pixels} pixels of an "
                           f"image at this scale; use at most {n_pixels}", key="k_values")

    def _with_k(self, k: int):
        clusterer = copy.copy(self.clusterer)
        clusterer.n_clusters = k
        return clusterer

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) labels of the chosen k."""
        labelings, members, scores, inertias = [], [], [], []
        for k in self.k_values:
            clusterer = self._with_k(k)
            labels = clusterer.fit_predict(features)
            labelings.append(labels)
            members.append(list(getattr(clusterer, "fit_members", [])))
            if self.inertia_curve:
                inertias.append(inertia(features, labels))
            if self.criterion == "silhouette":
                scores.append(silhouette(features, labels, self.silhouette_sample, self.seed))
        if self.criterion == "silhouette":
            finite = np.nan_to_num(np.asarray(scores), nan=-np.inf)
            chosen = self.k_values[int(np.argmax(finite))]
        else:
            chosen = elbow(self.k_values, inertias)
        self.fit_metrics = {"chosen_k": float(chosen),
                            **{f"inertia_k{k}": value for k, value in zip(self.k_values, inertias)},
                            **{f"silhouette_k{k}": value for k, value in zip(self.k_values, scores)}}
        self.fit_members = members[self.k_values.index(chosen)]
        return labelings[self.k_values.index(chosen)]
