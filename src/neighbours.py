"""Dilation by a pixel's immediate neighbours, for the masks and label maps that post-processing grows every round
and the metrics that look at outlines.

``scipy.ndimage``'s general filters cost several times more than these
shifted maxima on a frame-sized array, and a few steps call them many times
per frame. Both equal scipy's ``grey_dilation`` (for bool input
``binary_dilation``) with the same footprint; tests hold them equal.
"""

from __future__ import annotations

import numpy as np

#: a pixel and its eight neighbours: the structure that joins pixels touching at a corner (connectivity 2)
EIGHT = np.ones((3, 3), bool)


def _along(values: np.ndarray, axis: int) -> np.ndarray:
    """Each pixel's maximum over itself and its two neighbours along ``axis`` (a new array)."""
    out = values.copy()
    ahead, behind = [slice(None)] * 2, [slice(None)] * 2
    ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
    np.maximum(out[tuple(ahead)], values[tuple(behind)], out=out[tuple(ahead)])
    np.maximum(out[tuple(behind)], values[tuple(ahead)], out=out[tuple(behind)])
    return out


def dilate_cross(values: np.ndarray) -> np.ndarray:
    """Each pixel's maximum over itself and its four edge neighbours.

    Parameters
    ----------
    values : (H, W) bool or int ndarray

    Returns
    -------
    (H, W) ndarray of ``values``' dtype, a new array.
    """
    return np.maximum(_along(values, 0), _along(values, 1))


def dilate_square(values: np.ndarray) -> np.ndarray:
    """Each pixel's maximum over the 3 x 3 box around it (clipped to the array); same parameters and result
    type as ``dilate_cross``."""
    return _along(_along(values, 0), 1)


__all__ = ["EIGHT", "dilate_cross", "dilate_square"]
