"""Normalized cuts (Shi and Malik) on a region adjacency graph of SLIC superpixels."""

from __future__ import annotations

import numpy as np
from scipy import linalg, sparse
from scipy.sparse.csgraph import connected_components
from skimage.segmentation import slic

from src.clustering.superpixels import check_segments, region_adjacency, segment_means
from src.errors import check_range
from src.labels import dense_labels


def similarity_graph(features: np.ndarray, segments: np.ndarray, sigma: float) -> sparse.csr_matrix:
    """Weights of the region adjacency graph: touching segments joined by the similarity of their mean features.

    The weight of two touching segments (8-connected) is ``exp(-d**2 / sigma**2)``,
    ``d`` the Euclidean distance of their mean features; that is scikit-image's
    ``rag_mean_color(image, segments, connectivity=2, mode="similarity",
    sigma=sigma**2)`` for a 3-channel image. Built here because that function
    only takes 3 channels and visits every pixel in Python.

    Parameters
    ----------
    features : (H, W, C) float ndarray, any C
    segments : (H, W) int ndarray
        Segment ids ``0..S-1``, each present.
    sigma : float
        Feature distance at which a weight has fallen to 1/e.

    Returns
    -------
    (S, S) scipy.sparse.csr_matrix
        Symmetric, zero diagonal, stored weights in (0, 1].
    """
    means = segment_means(features.astype(np.float64), segments)
    pairs = np.stack(sparse.triu(region_adjacency(segments, connectivity=2), k=1).nonzero(), axis=1)
    weights = np.exp(-np.sum((means[pairs[:, 0]] - means[pairs[:, 1]]) ** 2, axis=1) / sigma ** 2)
    n = len(means)
    upper = sparse.coo_matrix((weights, (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    graph = (upper + upper.T).tocsr()
    graph.eliminate_zeros()  # weights of very unlike neighbours underflow to 0: no edge
    return graph


def best_bipartition(weights: np.ndarray, num_cuts: int) -> tuple[np.ndarray | None, float]:
    """The cheapest two-way normalized cut of a connected graph along its second generalized eigenvector.

    Solves ``(D - W) y = lambda D y`` for the second smallest ``lambda`` and
    tries ``num_cuts`` thresholds of ``y`` evenly spaced strictly between its
    extremes (Shi and Malik, 2000, sections 2.1 and 3.1.3).

    Parameters
    ----------
    weights : (m, m) float ndarray
        Symmetric, self-loops included, every degree > 0.
    num_cuts : int

    Returns
    -------
    side : (m,) bool ndarray or None
        One side of the cut; None when the eigenvector is flat (nothing to cut).
    cost : float
        Its normalized cut, ``cut/assoc(A) + cut/assoc(B)``, in [0, 2]; inf with None.
    """
    degree = weights.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(degree)
    laplacian = np.eye(len(weights)) - inv_sqrt[:, None] * weights * inv_sqrt[None, :]
    _, vector = linalg.eigh(laplacian, subset_by_index=[1, 1])
    y = inv_sqrt * vector[:, 0]
    low, high = y.min(), y.max()
    if np.isclose(low, high, rtol=0, atol=1e-12 * max(abs(low), abs(high), 1.0)):
        return None, np.inf
    sides = y[:, None] > np.linspace(low, high, num_cuts + 2)[1:-1][None, :]
    assoc = degree @ sides
    cut = assoc - np.einsum("it,it->t", sides, weights @ sides)
    costs = cut / assoc + cut / (degree.sum() - assoc)
    best = int(np.argmin(costs))
    return sides[:, best], float(costs[best])


def normalized_cut(weights: sparse.csr_matrix, thresh: float, num_cuts: int) -> np.ndarray:
    """Split a similarity graph recursively by two-way normalized cuts.

    A part is split while its cheapest cut costs less than ``thresh``; a part
    made of unconnected pieces is split into them first (a cut of cost 0).
    Every node gets a self-loop of weight 1, its similarity with itself, so
    no degree is 0 (as scikit-image's ``cut_normalized`` does).

    Parameters
    ----------
    weights : (S, S) sparse matrix, symmetric, no self-loops
    thresh : float
    num_cuts : int

    Returns
    -------
    (S,) int64 ndarray
        Part of each node, ``0..K-1``.
    """
    n = weights.shape[0]
    full = (weights + sparse.identity(n, format="csr")).tocsr()
    parts = np.zeros(n, np.int64)
    pending, n_parts = [np.arange(n)], 0
    while pending:
        nodes = pending.pop()
        sub = full[nodes][:, nodes]
        n_pieces, piece = connected_components(sub, directed=False)
        if n_pieces > 1:
            pending.extend(nodes[piece == k] for k in range(n_pieces))
            continue
        side, cost = best_bipartition(sub.toarray(), num_cuts) if len(nodes) > 1 else (None, np.inf)
        if side is not None and cost < thresh:
            pending.extend([nodes[side], nodes[~side]])
            continue
        parts[nodes] = n_parts
        n_parts += 1
    return dense_labels(parts)[1]


class NormalizedCutClusterer:
    """Normalized cuts on a region adjacency graph of SLIC superpixels, weighted by feature similarity.

    The feature image is cut into about ``n_segments`` SLIC superpixels
    (scikit-image); the graph of touching superpixels, each edge weighted by
    how alike their mean features are (``similarity_graph``), is split in two
    recursively by normalized cuts (``normalized_cut``) until the cheapest cut
    of a part costs more than ``thresh``; each part left is a cluster. The
    number of clusters is found, not set. A cut is cheap where the features
    change, so a player unlike the pitch is cut off even when small.

    The cuts use a dense symmetric eigensolver rather than scikit-image's
    ``cut_normalized``: that one asks ARPACK for up to 100 eigenvectors per
    cut, takes 2 to 4 s per 240x135 frame (5 to 9 times this) and fails on
    some real frames (``ArpackError 3``). Dense solving needs no random
    start, so the labels are the same on every run.

    Cost: SLIC, O(N), plus up to O(S^3) per cut of S superpixels; about
    0.4 s per 240x135 frame at the defaults, on one thread.

    Parameters
    ----------
    n_segments : int, default 400
        Superpixels requested from SLIC; it may return more or fewer.
    compactness : float, default 0.1
        SLIC's weight of the spatial term against the features.
    min_size_factor : float, default 0.05, in [0, 1]
        SLIC merges superpixels smaller than this fraction of the average
        size into a neighbour; scikit-image's 0.5 merges away small players.
    sigma : float, default 1.0
        Feature distance at which an edge's similarity has fallen to 1/e
        (``exp(-d**2 / sigma**2)``), in the units of the features.
    thresh : float, default 0.3, in (0, 2]
        A part is split no further once its cheapest normalized cut costs
        more than this (a two-way cut costs between 0 and 2). Larger gives
        more clusters.
    num_cuts : int, default 20
        Thresholds of the eigenvector tried per cut.
    """

    def __init__(self, n_segments: int = 400, compactness: float = 0.1, min_size_factor: float = 0.05,
                 sigma: float = 1.0, thresh: float = 0.3, num_cuts: int = 20):
        check_range("n_segments", n_segments, 2, integer=True)
        check_range("compactness", compactness, 0, low_open=True)
        check_range("min_size_factor", min_size_factor, 0, 1)
        check_range("sigma", sigma, 0, low_open=True)
        check_range("thresh", thresh, 0, 2, low_open=True)
        check_range("num_cuts", num_cuts, 1, integer=True)
        self.n_segments, self.compactness, self.min_size_factor = n_segments, compactness, min_size_factor
        self.sigma, self.thresh, self.num_cuts = sigma, thresh, num_cuts

    def check_input(self, n_pixels: int) -> None:
        """Raise LabError when ``n_segments`` exceeds the pixels of an image."""
        check_segments(self.n_segments, n_pixels)

    def superpixels(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) SLIC superpixel ids ``0..S-1``, the nodes of the graph."""
        self.check_input(features.shape[0] * features.shape[1])
        segments = slic(features, n_segments=self.n_segments, compactness=self.compactness, channel_axis=-1,
                        convert2lab=False, min_size_factor=self.min_size_factor, start_label=0)
        return dense_labels(segments)[1]

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """Cluster a feature image.

        Parameters
        ----------
        features : (H, W, C) float ndarray, any C

        Returns
        -------
        (H, W) int64 ndarray
            Labels ``0..K-1``, each used. A flat image is not always one
            cluster: its superpixels are a grid of equal weights, which a
            large ``thresh`` still cuts.
        """
        segments = self.superpixels(features)
        parts = normalized_cut(similarity_graph(features, segments, self.sigma), self.thresh, self.num_cuts)
        return dense_labels(parts[segments])[1].astype(np.int64)
