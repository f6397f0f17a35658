"""scikit-learn clusterers over pixels: fit on a seeded pixel sample, then label every pixel.

Density and hierarchical methods are quadratic or worse in the number of
points, so they are fitted on ``fit_sample`` pixels; every pixel then takes
the label of the estimator's ``predict`` where it has one, else of its
nearest sampled pixel (``src.clustering.distances.nearest``: a KD-tree in
few dimensions, blocks of distances beyond). Noise (-1) propagates.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import DBSCAN, HDBSCAN, MeanShift, MiniBatchKMeans, estimate_bandwidth
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import NearestNeighbors

from src.clustering.distances import nearest
from src.errors import LabError, check_choice, check_range, check_seed


class SampledClusterer:
    """Base of the scikit-learn pixel clusterers: subclasses build the estimator in ``_estimator``.

    Parameters
    ----------
    fit_sample : int or None
        Pixels the estimator is fitted on; None fits on all pixels.
    seed : int
    n_votes : int, default 1
        Seeded runs per image: the first with ``seed``, the others with
        ``seed + 1``, ``seed + 2``, ... (sample and estimator alike). Their
        label maps, after the first, are left in ``fit_members``; a run of the
        pipeline post-processes each and keeps the pixels that most of the
        player masks hold (``src.postprocess.majority``). Odd counts leave no
        ties.
    """

    def __init__(self, fit_sample: int | None = 4000, seed: int = 0, n_votes: int = 1):
        if fit_sample is not None:
            check_range("fit_sample", fit_sample, 2, integer=True)
        check_range("n_votes", n_votes, 1, integer=True)
        check_seed("seed", seed, span=n_votes)
        self.fit_sample = fit_sample
        self.seed = seed
        self.n_votes = n_votes
        self.fit_members: list[np.ndarray] = []

    def _check_fit_sample(self, needed: int, what: str) -> None:
        """Raise LabError if ``fit_sample`` is fewer than the ``needed`` points that ``what`` calls for."""
        if self.fit_sample is not None and self.fit_sample < needed:
            raise LabError(f"fit_sample={self.fit_sample} is fewer than the {needed} points {what} needs; use at "
                           f"least {needed}, or null for all pixels", key="fit_sample")

    def _estimator(self, flat: np.ndarray, seed: int):
        """A scikit-learn estimator for this sample (some estimate parameters from it), seeded with ``seed``."""
        raise NotImplementedError

    def check_input(self, n_pixels: int) -> None:
        """Raise LabError if an image of ``n_pixels`` pixels cannot be clustered."""
        needed = getattr(self, "n_clusters", 1)
        if needed > n_pixels:
            raise LabError(f"n_clusters={needed} is larger than the {n_pixels} pixels of an image "
                           f"at this scale; use at most {n_pixels} or a smaller data.scale", key="n_clusters")

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """Cluster the pixels of ``features``, (H, W, C); returns (H, W) int labels, -1 = noise."""
        h, w, c = features.shape
        self.check_input(h * w)
        # scikit-learn's k-means is faster in double precision than in single here
        flat = np.asarray(features.reshape(-1, c), dtype=np.float64)
        # the first run last, so that what a run leaves on the clusterer (DBSCAN's radius) is that run's
        self.fit_members = [self._labels(flat, self.seed + run).reshape(h, w) for run in range(1, self.n_votes)]
        return self._labels(flat, self.seed).reshape(h, w)

    def _labels(self, flat: np.ndarray, seed: int) -> np.ndarray:
        """(N,) int64 labels of the (N, C) pixels ``flat`` from one run seeded with ``seed``."""
        sample = flat
        if self.fit_sample is not None and self.fit_sample < len(flat):
            rng = np.random.default_rng(seed)
            sample = flat[rng.choice(len(flat), size=self.fit_sample, replace=False)]
        estimator = self._estimator(sample, seed)
        if sample is flat:
            labels = estimator.fit_predict(flat)
        elif hasattr(estimator, "predict"):
            labels = estimator.fit(sample).predict(flat)
        else:
            labels = self._assign(estimator, sample, estimator.fit_predict(sample), flat)
        return np.asarray(labels).astype(np.int64)

    def _assign(self, estimator, sample: np.ndarray, sample_labels: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Labels of all pixels from a fitted sample: the label of the nearest sampled pixel."""
        return sample_labels[nearest(flat, sample)[0]]


class MiniBatchKMeansClusterer(SampledClusterer):
    """Mini-batch k-means. O(max_iter * batch_size * k * C).

    Parameters
    ----------
    n_clusters : int, default 12
    batch_size : int, default 1024
    fit_sample : int or None, default None
    seed : int, default 0
    """

    def __init__(self, n_clusters: int = 12, batch_size: int = 1024, fit_sample: int | None = None, seed: int = 0):
        check_range("n_clusters", n_clusters, 2, integer=True)
        check_range("batch_size", batch_size, 1, integer=True)
        super().__init__(fit_sample, seed)
        self._check_fit_sample(n_clusters, f"n_clusters={n_clusters}")
        self.n_clusters, self.batch_size = n_clusters, batch_size

    def _estimator(self, flat, seed):
        return MiniBatchKMeans(self.n_clusters, batch_size=self.batch_size, n_init=1, random_state=seed)


class GaussianMixtureClusterer(SampledClusterer):
    """Gaussian mixture fitted by EM. O(max_iter * s * k * C^2) for full covariances.

    Parameters
    ----------
    n_clusters : int, default 12
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    fit_sample : int or None, default 4000
    seed : int, default 0
    """

    def __init__(self, n_clusters: int = 12, covariance_type: str = "full", fit_sample: int | None = 4000,
                 seed: int = 0):
        check_range("n_clusters", n_clusters, 2, integer=True)
        check_choice("covariance_type", covariance_type, {"full", "tied", "diag", "spherical"})
        super().__init__(fit_sample, seed)
        self._check_fit_sample(n_clusters, f"n_clusters={n_clusters}")
        self.n_clusters, self.covariance_type = n_clusters, covariance_type

    def _estimator(self, flat, seed):
        return GaussianMixture(self.n_clusters, covariance_type=self.covariance_type, random_state=seed)


class DBSCANClusterer(SampledClusterer):
    """DBSCAN on the pixel sample. Neighbour search by ``algorithm``: "brute" is O(s^2 * C) but
    fastest for the tens of feature dimensions of pixel features; "kd_tree" is about O(s log s)
    in a few dimensions with small ``eps`` and degrades towards O(s^2) beyond.

    Every other pixel joins the cluster of its nearest core sample if that
    lies within ``eps``, else it is noise (-1), as DBSCAN treats new points.
    Sparse pixels (players, in the noise mode) come out as -1. That search is
    ``src.clustering.distances.nearest`` with the same ``algorithm``.

    With ``eps="auto"`` the radius comes from each frame's own k-distance
    curve (k = ``min_samples``): ``eps_scale`` times the median distance of a
    sampled pixel to its k-th neighbour. The pitch, crowd and boards are dense
    and cover most of a broadcast frame, so pixels no more than ``eps_scale``
    times sparser than the typical pixel are core, and the rare structures
    (players) are noise, whatever the feature set's number of channels or
    spread. The radius used is in ``fit_metrics["dbscan_eps"]``.

    Parameters
    ----------
    eps : float or "auto", default "auto"
        Neighbourhood radius in standardized feature units (> 0), or "auto".
    eps_scale : float, default 1.5
        With ``eps="auto"``: the radius as a multiple of the median k-distance (> 0).
    min_samples : int, default 10
    algorithm : {"brute", "kd_tree", "ball_tree", "auto"}, default "brute"
    fit_sample : int or None, default 4000
    seed : int, default 0
    """

    def __init__(self, eps: float | str = "auto", eps_scale: float = 1.5, min_samples: int = 10,
                 algorithm: str = "brute", fit_sample: int | None = 4000, seed: int = 0):
        if eps != "auto":
            check_range("eps", eps, 0, low_open=True)
        check_range("eps_scale", eps_scale, 0, low_open=True)
        check_range("min_samples", min_samples, 1, integer=True)
        check_choice("algorithm", algorithm, {"brute", "kd_tree", "ball_tree", "auto"})
        super().__init__(fit_sample, seed)
        self.eps, self.eps_scale, self.min_samples, self.algorithm = eps, eps_scale, min_samples, algorithm
        self.fit_metrics: dict[str, float] = {}

    def radius(self, sample: np.ndarray) -> float:
        """The radius for this sample: ``eps``, or ``eps_scale`` x its median k-distance."""
        if self.eps != "auto":
            return float(self.eps)
        k = min(self.min_samples, len(sample))
        # the nearest neighbour of a sampled pixel is itself, as in DBSCAN's own count of min_samples
        distance, _ = NearestNeighbors(n_neighbors=k, algorithm=self.algorithm).fit(sample).kneighbors(sample)
        median = float(np.median(distance[:, -1]))
        return self.eps_scale * median if median > 0 else float(np.finfo(np.float32).eps)

    def _estimator(self, flat, seed):
        self.eps_ = self.radius(flat)
        self.fit_metrics = {"dbscan_eps": self.eps_}
        return DBSCAN(eps=self.eps_, min_samples=self.min_samples, algorithm=self.algorithm)

    def _assign(self, estimator, sample, sample_labels, flat):
        """DBSCAN's own rule for new points: the cluster of the nearest core sample within ``eps``, else noise."""
        core = estimator.core_sample_indices_
        if len(core) == 0:
            return np.full(len(flat), -1)
        index, distance = nearest(flat, sample[core], self.algorithm)
        return np.where(distance <= self.eps_, sample_labels[core][index], -1)


class HDBSCANClusterer(SampledClusterer):
    """HDBSCAN on the pixel sample. About O(s log s) with a KD-tree.

    Parameters
    ----------
    min_cluster_size : int, default 40
    min_samples : int or None, default None
    fit_sample : int or None, default 4000
    seed : int, default 0
    """

    def __init__(self, min_cluster_size: int = 40, min_samples: int | None = None, fit_sample: int | None = 4000,
                 seed: int = 0):
        check_range("min_cluster_size", min_cluster_size, 2, integer=True)
        if min_samples is not None:
            check_range("min_samples", min_samples, 1, integer=True)
        super().__init__(fit_sample, seed)
        # HDBSCAN's min_samples defaults to min_cluster_size
        self._check_fit_sample(min_samples or min_cluster_size,
                               f"min_samples={min_samples}" if min_samples else f"min_cluster_size={min_cluster_size}")
        self.min_cluster_size, self.min_samples = min_cluster_size, min_samples

    def check_input(self, n_pixels: int) -> None:
        option, needed = ("min_samples", self.min_samples) if self.min_samples else \
            ("min_cluster_size", self.min_cluster_size)
        if needed > n_pixels:
            raise LabError(f"{option}={needed} is more than the {n_pixels} pixels of an image at this scale; use at "
                           f"most {n_pixels} or a smaller data.scale", key=option)

    def _estimator(self, flat, seed):
        return HDBSCAN(min_cluster_size=self.min_cluster_size, min_samples=self.min_samples, copy=True)


class MeanShiftClusterer(SampledClusterer):
    """Mean shift with binned seeds. O(iterations * seeds * s) with neighbour queries.

    Parameters
    ----------
    bandwidth : float or None, default None
        Kernel bandwidth in standardized feature units; None estimates it
        from the sample at ``quantile``.
    quantile : float, default 0.1, in (0, 1]
    fit_sample : int or None, default 2000
    seed : int, default 0
    """

    def __init__(self, bandwidth: float | None = None, quantile: float = 0.1, fit_sample: int | None = 2000,
                 seed: int = 0):
        if bandwidth is not None:
            check_range("bandwidth", bandwidth, 0, low_open=True)
        check_range("quantile", quantile, 0, 1, low_open=True)
        super().__init__(fit_sample, seed)
        self.bandwidth, self.quantile = bandwidth, quantile

    def _estimator(self, flat, seed):
        bandwidth = self.bandwidth or estimate_bandwidth(flat, quantile=self.quantile, random_state=seed)
        if not bandwidth > 0 and not np.ptp(flat, axis=0).any():
            # a frame of one feature value (a fade to black, colour features): any radius gives its one cluster
            bandwidth = 1.0
        if not bandwidth > 0:
            raise LabError(f"clusterer.bandwidth could not be estimated at quantile={self.quantile} (got "
                           f"{bandwidth}); raise clusterer.quantile or give clusterer.bandwidth")
        return MeanShift(bandwidth=bandwidth, bin_seeding=True)
