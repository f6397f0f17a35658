"""The picture inside the black bars of a letterboxed or pillarboxed broadcast."""

from __future__ import annotations

import numpy as np

from src.errors import check_range


def _run(flags: np.ndarray) -> int:
    """How many leading entries of a 1-d bool array are True."""
    return len(flags) if flags.all() else int(np.argmin(flags))


def picture_area(image: np.ndarray, black: int = 40) -> tuple[slice, slice]:
    """Rows and columns of ``image`` inside the black bars along its edges.

    Footage made for another aspect ratio reaches a 16:9 frame with black
    bars: 4:3 broadcasts at the sides (pillarbox), wide crops above and
    below (letterbox). A bar is a run of whole columns (or rows) at an edge
    in which no channel of any pixel is brighter than ``black``; rows are
    judged within the columns that are left. A frame that is black
    throughout is returned whole.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
    black : int, default 40, in [0, 255]
        Brightest value of a bar's pixels: video black is 0 or 16, and
        compression adds a little.

    Returns
    -------
    (rows, cols) : pair of slices
    """
    check_range("black", black, 0, 255, integer=True)
    whole = slice(0, image.shape[0]), slice(0, image.shape[1])
    # most frames have no bar: their four edges say so at once
    if not any((image[edge] <= black).all() for edge in ((0,), (-1,), (slice(None), 0), (slice(None), -1))):
        return whole
    dark = image.max(axis=-1) <= black
    columns = dark.all(axis=0)
    if columns.all():
        return whole
    cols = slice(_run(columns), len(columns) - _run(columns[::-1]))
    rows = dark[:, cols].all(axis=1)
    return slice(_run(rows), len(rows) - _run(rows[::-1])), cols


__all__ = ["picture_area"]
