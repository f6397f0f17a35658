"""k-means over pixel features (scikit-learn), optionally fitted on a pixel sample."""

from __future__ import annotations

from sklearn.cluster import KMeans

from src.clustering.sklearn_pixels import SampledClusterer
from src.errors import check_range


class KMeansClusterer(SampledClusterer):
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
    n_votes : int, default 1
        Seeded runs whose player masks vote per pixel (see
        ``SampledClusterer``); unlike ``n_init``, which keeps the run of
        lowest inertia, every run counts.
    """

    def __init__(self, n_clusters: int = 12, n_init: int = 1, max_iter: int = 300,
                 fit_sample: int | None = 4000, seed: int = 0, n_votes: int = 1):
        check_range("n_clusters", n_clusters, 2, integer=True)
        check_range("n_init", n_init, 1, integer=True)
        check_range("max_iter", max_iter, 1, integer=True)
        super().__init__(fit_sample, seed, n_votes)
        self._check_fit_sample(n_clusters, f"n_clusters={n_clusters}")
        self.n_clusters = n_clusters
        self.n_init = n_init
        self.max_iter = max_iter

    def _estimator(self, flat, seed):
        return KMeans(self.n_clusters, init="k-means++", n_init=self.n_init, max_iter=self.max_iter,
                      random_state=seed)
