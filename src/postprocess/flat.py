"""Things lying on the pitch: painted logos, pitch-side mats, shadows of stands.

A broadcast camera looks down at the pitch from the stands, so whatever lies
on the grass is foreshortened: its picture is far wider than high. A player
stands upright. Lying down he is about as wide as he stood tall, and players
side by side stand taller than half their width, so a part both flat and
wider than players are tall at its distance is none of them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

from src.errors import check_range
from src.neighbours import EIGHT
from src.postprocess.standing import theil_sen
from src.postprocess.steps import MaskState, cut_by_border


def expected_heights(heights: np.ndarray, feet: np.ndarray, upright: np.ndarray) -> np.ndarray:
    """The height a player standing at each foot row would have, from the upright parts.

    Perspective makes nearer players, lower in the picture, taller: a
    Theil-Sen line of the upright parts' heights against their foot rows,
    or their median height when fewer than three stand on different rows.
    The line is held at no less than half that median, so a steep fit does
    not shrink a player far from the others to nothing.

    Parameters
    ----------
    heights, feet : (n,) ndarrays
        Box height and bottom row of each part.
    upright : (n,) bool ndarray with a True entry

    Returns
    -------
    (n,) float ndarray
    """
    median = float(np.median(heights[upright]))
    if upright.sum() < 3 or np.ptp(feet[upright]) == 0:
        return np.full(len(heights), median)
    slope, intercept = theil_sen(heights[upright], feet[upright])
    return np.maximum(intercept + slope * feet, median / 2)


def wide_rows(counts: np.ndarray) -> slice:
    """The span of rows holding at least half as many pixels as the fullest row, from a part's row ``counts``
    (or of columns, from its column counts).

    For a logo with a player standing on it, the logo's rows: the player's
    body above it is narrow.
    """
    where = np.flatnonzero(counts >= counts.max() / 2)
    return slice(where[0], where[-1] + 1)


class RemoveFlat:
    """Remove what lies flat on the pitch and is wider than a player is tall there.

    A part is looked at in its wide rows (``wide_rows``). When they are
    wider than ``width`` times the height of a player standing at the
    part's foot row (``expected_heights`` of the frame's upright parts: at
    least as high as wide and more than one pixel high), and at least
    ``aspect`` times as wide as high, and what the part has below them
    holds at most ``below`` times their pixels, those rows are paint or a
    mat on the grass and leave the mask; what rises above them (a player
    standing on a logo) stays. Paint has nothing below it but a pitch line
    crossing it, while a wall of players shoulder to shoulder, whose shirts
    make one wide band, stands on its legs. The wide rows' width is that of the
    columns in which they hold at least three pixels and a quarter of their
    height: a pitch line crossing a player, one or two pixels thick, does
    not make his torso wide. A frame without an upright part gives no scale and keeps
    every part; a part the frame's edge cuts (``cut_by_border``) is kept
    too, as its width there is not its own.

    Parameters
    ----------
    aspect : float, default 2.5, >= 1
    width : float, default 2.0, > 0
    below : float, default 0.25, >= 0
    """

    def __init__(self, aspect: float = 2.5, width: float = 2.0, below: float = 0.25):
        check_range("aspect", aspect, 1)
        check_range("width", width, 0, low_open=True)
        check_range("below", below, 0)
        self.aspect, self.width, self.below = aspect, width, below

    def __call__(self, state: MaskState) -> MaskState:
        parts, n = ndi.label(state.mask, structure=EIGHT)
        if n == 0:
            return state
        boxes = ndi.find_objects(parts)
        heights = np.array([rows.stop - rows.start for rows, _ in boxes])
        widths = np.array([cols.stop - cols.start for _, cols in boxes])
        feet = np.array([rows.stop for rows, _ in boxes])
        upright = (heights >= widths) & (heights > 1)
        if not upright.any():
            return state
        player_widths = self.width * expected_heights(heights, feet, upright)
        mask = state.mask
        for index in np.flatnonzero((widths > player_widths) & ~cut_by_border(parts, n)):
            rows, cols = boxes[index]
            part = parts[rows, cols] == index + 1
            counts = part.sum(axis=1)
            core = wide_rows(counts)
            height = core.stop - core.start
            across = (part[core].sum(axis=0) >= max(3.0, height / 4)).sum()
            if (across > player_widths[index] and across >= self.aspect * height
                    and counts[core.stop:].sum() <= self.below * counts[core].sum()):
                if mask is state.mask:
                    mask = mask.copy()
                mask[rows, cols][core] &= ~part[core]
        return state if mask is state.mask else replace(state, mask=mask)
