"""Broadcast graphics laid over the picture: captions, score bugs, tickers.

A broadcaster lays its graphics over the pitch as solid, axis-aligned bars,
wider than tall, kept inside the title-safe area away from the frame's edge.
None of their colours is grass, so they reach the player mask whole, and one
floating over the pitch is enclosed by it like a player. A player is upright
and never fills his bounding box.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi

from src.errors import check_range
from src.neighbours import EIGHT
from src.postprocess.flat import wide_rows
from src.postprocess.steps import MaskState, fill_holes


def graphic_core(part: np.ndarray) -> tuple[slice, slice]:
    """The box of a part's full rows and columns: where a bar lies, without what touches it.

    Rows holding at least half as many of the part's pixels as its fullest
    row are its core rows; within their span, columns holding at least half
    as many as the fullest column are its core columns. A bar crossed by a
    pitch line keeps the bar's box; for a player it is the torso and legs.

    Parameters
    ----------
    part : (h, w) bool ndarray with a True pixel

    Returns
    -------
    (rows, cols) : pair of slices into ``part``
    """
    rows = wide_rows(part.sum(axis=1))
    return rows, wide_rows(part[rows].sum(axis=0))


def _edge_fill(part: np.ndarray, rows: slice, cols: slice) -> float:
    """How full the fuller of the rows right above and right below the box ``(rows, cols)`` of ``part`` is,
    within its columns (0 where the box meets the part's edge)."""
    beside = [part[row, cols].mean() for row in (rows.start - 1, rows.stop) if 0 <= row < part.shape[0]]
    return max(beside, default=0.0)


class RemoveGraphics:
    """Remove captions and score bugs: solid bars, wider than tall, inside the frame.

    Each connected part of the mask, its holes filled (a clusterer may give
    a bar's plain inside a cluster of its own and keep only its outline), is
    reduced to its core (``graphic_core``): a caption's box without the pitch
    line that runs into it. The core is a graphic, and the mask's pixels in
    its box leave the mask, when

    - it fills at least ``fill`` of its box (a player's silhouette, with legs
      apart and a head narrower than the shoulders, does not);
    - it is at least ``aspect`` times as wide as high (players stand upright);
    - it holds at least ``share`` of its part's pixels (a player with his arms
      out makes a wide, full band of a few rows, a small share of him);
    - the rows right above and below it, within its columns, are at most
      ``edge`` full: a bar's top and bottom are straight, where heads rise
      above a row of shoulders (a wall of players) and legs hang below;
    - it covers at least ``min_area`` of the frame;
    - it touches no edge of the frame (graphics keep within the title-safe
      area; a player cut by the edge fills the box the edge cuts).

    All tests are ratios of the part or of the frame, so the rule holds at
    any zoom and working size.

    Parameters
    ----------
    fill : float, default 0.9, in (0, 1]
    aspect : float, default 2.0, > 0
    share : float, default 0.7, in [0, 1]
    min_area : float, default 0.002, in [0, 1]
        Fraction of the frame's pixels.
    edge : float, default 0.35, in [0, 1]
    """

    def __init__(self, fill: float = 0.9, aspect: float = 2.0, share: float = 0.7, min_area: float = 0.002,
                 edge: float = 0.35):
        check_range("fill", fill, 0, 1, low_open=True)
        check_range("aspect", aspect, 0, low_open=True)
        check_range("share", share, 0, 1)
        check_range("min_area", min_area, 0, 1)
        check_range("edge", edge, 0, 1)
        self.fill, self.aspect, self.share, self.min_area, self.edge = fill, aspect, share, min_area, edge

    def __call__(self, state: MaskState) -> MaskState:
        parts, n = ndi.label(state.mask, structure=EIGHT)
        if n == 0:
            return state
        height, width = state.mask.shape
        smallest = self.min_area * state.mask.size
        # a core as wide as `aspect` x its height and as large as `smallest` is at least this wide: most
        # players' boxes are narrower, and are passed over
        narrowest = np.sqrt(self.aspect * smallest)
        graphics = np.zeros_like(state.mask)
        for index, box in enumerate(ndi.find_objects(parts), start=1):
            box_height, box_width = box[0].stop - box[0].start, box[1].stop - box[1].start
            if box_width < narrowest or box_height * box_width < smallest:
                continue
            # a clusterer that gives a bar's plain inside a cluster of its own leaves its outline: filled, whole
            part = fill_holes(parts[box] == index)
            size = np.count_nonzero(part)
            rows, cols = graphic_core(part)
            core = part[rows, cols]
            core_height, core_width = core.shape
            top, left = box[0].start + rows.start, box[1].start + cols.start
            inside = top > 0 and left > 0 and top + core_height < height and left + core_width < width
            if (inside and core.size >= smallest and core_width >= self.aspect * core_height
                    and core.mean() >= self.fill and core.sum() >= self.share * size
                    and _edge_fill(part, rows, cols) <= self.edge):
                graphics[top:top + core_height, left:left + core_width] = True
        if not graphics.any():
            return state
        return replace(state, mask=state.mask & ~graphics)


__all__ = ["RemoveGraphics", "graphic_core"]
