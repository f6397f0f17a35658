"""Superpixel clusterers (scikit-image), and agglomerative clustering of superpixels."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse
from skimage.segmentation import felzenszwalb, slic
from sklearn.cluster import AgglomerativeClustering

from src.errors import LabError, check_choice, check_range
from src.labels import dense_labels, label_means


class SLICClusterer:
    """SLIC superpixels on the feature image: each superpixel is a cluster. O(N * iterations).

    Parameters
    ----------
    n_segments : int, default 1500
    compactness : float, default 0.1
        Weight of the spatial term against the (standardized) features.
    sigma : float, default 0.0
        Gaussian smoothing before segmentation.
    """

    def __init__(self, n_segments: int = 1500, compactness: float = 0.1, sigma: float = 0.0):
        check_range("n_segments", n_segments, 2, integer=True)
        check_range("compactness", compactness, 0, low_open=True)
        check_range("sigma", sigma, 0)
        self.n_segments, self.compactness, self.sigma = n_segments, compactness, sigma

    def check_input(self, n_pixels: int) -> None:
        check_segments(self.n_segments, n_pixels)

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) superpixel labels from 0."""
        self.check_input(features.shape[0] * features.shape[1])
        return slic(features, n_segments=self.n_segments, compactness=self.compactness, sigma=self.sigma,
                    channel_axis=-1, convert2lab=False, start_label=0).astype(np.int64)


class FelzenszwalbClusterer:
    """Felzenszwalb's graph-based segmentation on the feature image. O(N log N).

    Parameters
    ----------
    scale : float, default 10.0
        Higher means larger segments.
    sigma : float, default 0.5
    min_size : int, default 5
    """

    def __init__(self, scale: float = 10.0, sigma: float = 0.5, min_size: int = 5):
        check_range("scale", scale, 0, low_open=True)
        check_range("sigma", sigma, 0)
        check_range("min_size", min_size, 1, integer=True)
        self.scale, self.sigma, self.min_size = scale, sigma, min_size

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) segment labels from 0."""
        with warnings.catch_warnings():
            # scikit-image doubts images of more than 4 channels; feature images are meant to have them
            warnings.filterwarnings("ignore", message="Got image with third dimension", category=RuntimeWarning)
            segments = felzenszwalb(features, scale=self.scale, sigma=self.sigma, min_size=self.min_size,
                                    channel_axis=-1)
        return segments.astype(np.int64)


def check_segments(n_segments: int, n_pixels: int) -> None:
    """Raise LabError when ``n_segments`` superpixels are asked of an image of ``n_pixels`` pixels."""
    if n_segments > n_pixels:
        raise LabError(f"n_segments={n_segments} is larger than the {n_pixels} pixels of an "
                       f"image at this scale; use at most {n_pixels}", key="n_segments")


def segment_means(features: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Mean feature of each segment: (H, W, C) features and (H, W) ids 0..n-1 -> (n, C)."""
    return label_means(features, segments)[0]


def region_adjacency(segments: np.ndarray, connectivity: int = 1) -> sparse.csr_matrix:
    """Symmetric (n, n) 0/1 adjacency of the neighbouring segments of a label map.

    ``connectivity`` 1 joins segments sharing an edge, 2 also those sharing only a corner.
    """
    check_choice("connectivity", connectivity, {1, 2})
    neighbours = [(segments[:, :-1], segments[:, 1:]), (segments[:-1, :], segments[1:, :])]
    if connectivity == 2:
        neighbours += [(segments[:-1, :-1], segments[1:, 1:]), (segments[:-1, 1:], segments[1:, :-1])]
    pairs = np.concatenate([np.stack([a.ravel(), b.ravel()], axis=1) for a, b in neighbours])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    n = int(segments.max()) + 1
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
    return ((graph + graph.T) > 0).astype(np.float64)


class AgglomerativeClusterer:
    """Agglomerative clustering of SLIC superpixels, merging only neighbours in the image.

    Pixels are first grouped into ``n_segments`` SLIC superpixels; their mean
    features are merged bottom-up with the region adjacency graph as
    connectivity. Merging superpixels instead of pixels keeps it at about
    O(S^2) for S superpixels instead of O(N^2) for N pixels.

    Parameters
    ----------
    n_clusters : int, default 12
    linkage : {"ward", "average", "complete", "single"}, default "average"
    n_segments : int, default 1500
    compactness : float, default 0.1
    """

    def __init__(self, n_clusters: int = 12, linkage: str = "average", n_segments: int = 1500,
                 compactness: float = 0.1):
        check_range("n_clusters", n_clusters, 2, integer=True)
        check_choice("linkage", linkage, {"ward", "average", "complete", "single"})
        if n_segments < n_clusters:
            raise LabError(f"n_segments={n_segments} is smaller than n_clusters={n_clusters}; "
                           "use more segments than clusters", key="n_segments")
        self.n_clusters, self.linkage = n_clusters, linkage
        self.superpixels = SLICClusterer(n_segments, compactness)

    def check_input(self, n_pixels: int) -> None:
        self.superpixels.check_input(n_pixels)

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) labels in [0, n_clusters) (fewer if SLIC gives fewer segments)."""
        segments = dense_labels(self.superpixels.fit_predict(features))[1]
        n = int(segments.max()) + 1
        if n <= self.n_clusters:
            return segments.astype(np.int64)
        means = segment_means(features, segments)
        model = AgglomerativeClustering(self.n_clusters, linkage=self.linkage,
                                        connectivity=region_adjacency(segments))
        return model.fit_predict(means)[segments].astype(np.int64)


class SuperpixelFeatureClusterer:
    """Superpixels first, then any clusterer on the superpixels' mean features.

    Each superpixel becomes one point (its mean feature), so the clusterer
    sees S points instead of N pixels and its labels follow superpixel
    boundaries. Cost: the superpixels' plus the clusterer's on S points.

    Parameters
    ----------
    superpixels : SLICClusterer or FelzenszwalbClusterer
    clusterer : any clusterer of this package
    """

    def __init__(self, superpixels, clusterer):
        self.superpixels = superpixels
        self.clusterer = clusterer
        # the inner clusterer's further seeded runs (a k-means with n_votes > 1), as pixel label maps
        self.fit_members: list[np.ndarray] = []

    @property
    def fit_metrics(self) -> dict[str, float]:
        return getattr(self.clusterer, "fit_metrics", {})

    def check_input(self, n_pixels: int) -> None:
        for name in ("superpixels", "clusterer"):
            part = getattr(self, name)
            if hasattr(part, "check_input"):
                try:
                    part.check_input(n_pixels)
                except LabError as exc:
                    raise exc.under(name) from None

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) labels; -1 where the clusterer marks a superpixel as noise."""
        segments = dense_labels(self.superpixels.fit_predict(features))[1]
        means = segment_means(features, segments).astype(np.float32)
        n_clusters = getattr(self.clusterer, "n_clusters", None)
        self.fit_members = []
        if n_clusters is not None and n_clusters >= len(means):
            return segments.astype(np.int64)
        point_labels = self.clusterer.fit_predict(means[:, None, :]).reshape(-1)
        self.fit_members = [member.reshape(-1)[segments].astype(np.int64)
                            for member in getattr(self.clusterer, "fit_members", [])]
        return point_labels[segments].astype(np.int64)
