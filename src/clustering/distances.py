"""Euclidean distances between feature vectors, a block of rows at a time, for the objectives and the clusterers.

Each block of squared distances is one matrix product:
``[p, |p|², 1] . [-2q, 1, |q|²]`` gives ``|p_i|² + |q_j|² - 2 p_i.q_j``
directly, sparing three passes over a matrix of the block's size. The blocks
stay in a core's cache while the caller reduces them (sums by cluster, the
nearest point), so the whole matrix is never in memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from sklearn.neighbors import BallTree, KDTree

from src.errors import check_choice

# 2^16 float32 values (256 KiB) stay in L2 between the product that makes them and the one that sums them by
# cluster (the silhouette). The whole matrix went through memory four times: in a run on real frames that took
# 1.5 times as long at the default 1000 pixels and 1.8 times at 2000; blocks of 2^14 to 2^19 values were slower
DISTANCE_BLOCK = 1 << 16
# an argmin reads each value once, so larger blocks pay: for the 32,400 pixels of a frame against 3,500-4,000
# sampled ones, blocks of 2^18 and 2^19 float64 values were equally fast, and 2^16 and 2^21 took 1.2-1.3 times as long
NEAREST_BLOCK = 1 << 18
# 30 real frames' pixels against 3,500 sampled ones: a KD-tree took 81 ms against 104 for 5 dimensions (colour
# and position), 129 against 110 for 7 (colour and texture) and 1,683 against 193 for 21 (CNN features)
TREE_DIMENSIONS = 5


def squared_distance_blocks(points: np.ndarray, others: np.ndarray,
                            block: int = DISTANCE_BLOCK) -> Iterator[tuple[int, int, np.ndarray]]:
    """Squared Euclidean distances from ``points`` (n, C) to ``others`` (m, C), by blocks of rows.

    Yields ``(start, stop, distances)`` with ``distances`` the (stop - start, m)
    squared distances of ``points[start:stop]``, about ``block`` values per
    block (at least one row), in the dtype of the inputs. Rounding can leave a
    value a little below 0, or a point's distance to itself a little above.
    """
    norms = (points ** 2).sum(axis=1, keepdims=True)
    other_norms = norms if others is points else (others ** 2).sum(axis=1, keepdims=True)
    left = np.hstack([points, norms, np.ones_like(norms)])
    right = np.ascontiguousarray(np.hstack([-2.0 * others, np.ones_like(other_norms), other_norms]).T)
    step = max(1, block // max(len(others), 1))
    for start in range(0, len(points), step):
        stop = min(start + step, len(points))
        yield start, stop, left[start:stop] @ right


def nearest(points: np.ndarray, others: np.ndarray, algorithm: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Each point's nearest of ``others`` and the Euclidean distance to it. Exact whatever the ``algorithm``.

    "brute" takes an argmin over each block of squared distances: about half
    the time of ``sklearn.neighbors.NearestNeighbors(n_neighbors=1,
    algorithm="brute")``, which keeps a heap per value, for a frame's pixels
    against a sample of a few thousand. "kd_tree" and "ball_tree" query
    scikit-learn's trees, which win only in very few dimensions. "auto" takes
    the KD-tree up to ``TREE_DIMENSIONS`` dimensions and "brute" beyond.
    Ties go to the lower index with "brute".

    Parameters
    ----------
    points : (n, C) float ndarray
    others : (m, C) float ndarray, m >= 1
    algorithm : {"auto", "brute", "kd_tree", "ball_tree"}, default "auto"

    Returns
    -------
    index : (n,) intp ndarray
    distance : (n,) float ndarray
    """
    check_choice("algorithm", algorithm, {"auto", "brute", "kd_tree", "ball_tree"})
    if len(others) == 0:
        raise ValueError("nearest needs at least one point in others")
    if algorithm == "auto":
        algorithm = "kd_tree" if points.shape[1] <= TREE_DIMENSIONS else "brute"
    if algorithm != "brute":
        tree = KDTree if algorithm == "kd_tree" else BallTree
        distance, index = tree(others).query(points, k=1)
        return index[:, 0], distance[:, 0]
    index = np.empty(len(points), dtype=np.intp)
    squared = np.empty(len(points), dtype=np.result_type(points, others))
    for start, stop, distances in squared_distance_blocks(points, others, NEAREST_BLOCK):
        found = distances.argmin(axis=1)
        index[start:stop] = found
        squared[start:stop] = distances[np.arange(stop - start), found]
    return index, np.sqrt(np.maximum(squared, 0.0))


__all__ = ["DISTANCE_BLOCK", "NEAREST_BLOCK", "TREE_DIMENSIONS", "nearest", "squared_distance_blocks"]
