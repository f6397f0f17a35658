"""The picture inside the black bars of a letterboxed or pillarboxed broadcast, and above a ticker along its foot."""

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


def overlay_top(image: np.ndarray, depth: float = 0.15, *, change: int = 40, share: float = 0.97) -> int:
    """Row at which a graphic laid across the whole width along the bottom edge begins; the height if none.

    A broadcaster's ticker or score strip covers the foot of the picture from
    edge to edge, and its top is a straight line across it: a row at which
    at least ``share`` of the columns change by more than ``change`` in some
    channel (between the rows either side of it, so an edge blended into one
    row at working size counts). Pitch lines, players and boards change only
    some columns. The topmost such row within the bottom ``depth`` of the
    picture is returned.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray
    depth : float, default 0.15, in [0, 1]
        The deepest such a graphic reaches, as a fraction of the height.
    change : int, default 40, in [0, 255]
    share : float, default 0.97, in (0, 1]

    Returns
    -------
    int
    """
    check_range("depth", depth, 0, 1)
    height = image.shape[0]
    first = max(1, round(height * (1 - depth)))
    if first >= height - 1:
        return height
    pixels = image.astype(np.int16)

    def across(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        return (np.abs(lower - upper).max(axis=-1) > change).mean(axis=-1) >= share

    rows = np.flatnonzero(across(pixels[first + 1:], pixels[first - 1:-2]))
    if len(rows) == 0:
        return height
    row = first + int(rows[0])
    # a sharp edge between two rows is found one row early: the ticker begins below when that row still differs
    return row + 1 if across(pixels[row + 1], pixels[row]) else row


__all__ = ["overlay_top", "picture_area"]
