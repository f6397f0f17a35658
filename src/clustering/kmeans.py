"""k-means over pixel features (scikit-learn), optionally fitted on a pixel sample."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from src.errors import LabError, check_range


class KMeansClusterer:
    """k-means++ clustering of the pixels of one image.

    Fitting on ``fit_sample`` seeded pixels, then assigning every pixel to its
    nearest centre, gives nearly the same centres as a full fit at a fraction
    of the cost. Complexity: O(n_init * max_iter * fit_sample * k * C) to fit,
    O(N * k * C) to assign N pixels.

    Parameters
    ----------
    n_clusters : int, default 12
    n_init : int, default 1
        Number of k-means++ restarts; the lowest inertia wins.
    max_iter : int, default 300
    fit_sample : int or None, default 4000
        Pixels used to fit the centres; None fits on all pixels.
    seed : int, default 0
    """

    def __init__(self, n_clusters: int = 12, n_init: int = 1, max_iter: int = 300,
                 fit_sample: int | None = 4000, seed: int = 0):
        check_range("clusterer.n_clusters", n_clusters, 2, integer=True)
        check_range("clusterer.n_init", n_init, 1, integer=True)
        check_range("clusterer.max_iter", max_iter, 1, integer=True)
        if fit_sample is not None:
            check_range("clusterer.fit_sample", fit_sample, n_clusters, integer=True)
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter
        self.fit_sample = fit_sample
        self.seed = seed

    def check_input(self, n_pixels: int) -> None:
        """Raise LabError if an image of ``n_pixels`` pixels cannot be clustered."""
        if self.n_clusters > n_pixels:
            raise LabError(f"clusterer.n_clusters={self.n_clusters} is larger than the {n_pixels} pixels of an "
                           f"image at this scale; use at most {n_pixels} or a smaller data.scale")

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """Cluster the pixels of ``features``, (H, W, C); returns (H, W) int labels in [0, k)."""
        h, w, c = features.shape
        self.check_input(h * w)
        flat = features.reshape(-1, c)
        model = KMeans(self.n_clusters, init="k-means++", n_init=self.n_init, max_iter=self.max_iter,
                       random_state=self.seed)
        if self.fit_sample is not None and self.fit_sample < len(flat):
            rng = np.random.default_rng(self.seed)
            model.fit(flat[rng.choice(len(flat), size=self.fit_sample, replace=False)])
            labels = model.predict(flat)
        else:
            labels = model.fit_predict(flat)
        return labels.reshape(h, w).astype(np.int64)
