"""Dilation by a pixel's immediate neighbours, for the masks and label maps that post-processing grows every round.

``scipy.ndimage``'s general filters cost several times more than these
shifted maxima on a frame-sized array, and a few steps call them many times
per frame. Both equal scipy's ``grey_dilation`` (for bool input
``binary_dilation``) with the same footprint; tests hold them equal.
"""

from __future__ import annotations

import numpy as np


def dilate_cross(values: np.ndarray) -> np.ndarray:
    """Each pixel's maximum over itself and its four edge neighbours.

    Parameters
    ----------
    values : (H, W) bool or int ndarray

    Returns
    -------
    (H, W) ndarray of ``values``' dtype, a new array.
    """
    out = values.copy()
    np.maximum(out[1:], values[:-1], out=out[1:])
    np.maximum(out[:-1], values[1:], out=out[:-1])
    np.maximum(out[:, 1:], values[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], values[:, 1:], out=out[:, :-1])
    return out


def dilate_square(values: np.ndarray) -> np.ndarray:
    """Each pixel's maximum over the 3 x 3 box around it (clipped to the array).

    Parameters
    ----------
    values : (H, W) bool or int ndarray

    Returns
    -------
    (H, W) ndarray of ``values``' dtype, a new array.
    """
    rows = values.copy()
    np.maximum(rows[1:], values[:-1], out=rows[1:])
    np.maximum(rows[:-1], values[1:], out=rows[:-1])
    out = rows.copy()
    np.maximum(out[:, 1:], rows[:, :-1], out=out[:, 1:])
    np.maximum(out[:, :-1], rows[:, 1:], out=out[:, :-1])
    return out


__all__ = ["dilate_cross", "dilate_square"]
