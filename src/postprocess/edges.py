"""Pixels on a player's outline: blends of his colour and the grass, given to whichever covers more of them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from src.cielab import cielab
from src.errors import check_range
from src.neighbours import dilate_square
from src.postprocess.steps import MaskState


def _box_means(values: np.ndarray, weight: np.ndarray, rows: np.ndarray, cols: np.ndarray,
               radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` (H, W, C) over the pixels where ``weight`` is set, in the box of ``radius`` around each
    of the pixels ``rows, cols`` (clipped to the frame), and how many pixels that is: from one summed-area table,
    so the cost does not grow with the box. The table is laid out channel first, where both running sums
    move along contiguous memory."""
    height, width = weight.shape
    table = np.zeros((values.shape[-1] + 1, height + 1, width + 1))
    np.multiply(np.moveaxis(values, -1, 0), weight, out=table[:-1, 1:, 1:])
    table[-1, 1:, 1:] = weight
    np.cumsum(table, axis=1, out=table)
    np.cumsum(table, axis=2, out=table)
    top, bottom = np.clip(rows - radius, 0, height), np.clip(rows + radius + 1, 0, height)
    left, right = np.clip(cols - radius, 0, width), np.clip(cols + radius + 1, 0, width)
    sums = (table[:, bottom, right] - table[:, top, right] - table[:, bottom, left] + table[:, top, left]).T
    counts = sums[:, -1]
    return sums[:, :-1] / np.maximum(counts, 1)[:, None], counts


def _neighbour_means(values: np.ndarray, weight: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Mean of ``values`` (H, W, C) over the pixels where ``weight`` is set among the 3 x 3 neighbourhood of each
    of the pixels ``rows, cols`` (clipped to the frame): nine gathers at those pixels only, which costs less
    than any frame-wide pass when they are an outline's few."""
    height, width = weight.shape
    flat_values, flat_weight = values.reshape(height * width, -1), weight.reshape(-1)
    sums = np.zeros((rows.size, flat_values.shape[1]))
    counts = np.zeros(rows.size)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            at_rows, at_cols = rows + dr, cols + dc
            inside = (at_rows >= 0) & (at_rows < height) & (at_cols >= 0) & (at_cols < width)
            at = np.clip(at_rows, 0, height - 1) * width + np.clip(at_cols, 0, width - 1)
            counted = flat_weight.take(at) & inside
            sums += flat_values.take(at, axis=0) * counted[:, None]
            counts += counted
    return sums / np.maximum(counts, 1)[:, None]


class BlendedEdges:
    """Add to the mask the pitch pixels along its outline that are mostly player.

    A frame reduced to working size averages each pixel over a box of the
    original, so a pixel on a player's outline is a blend of his colour and
    the grass behind him, and ground truth reduced the same way counts it as
    player where he covers at least half of it. A clustering puts such a
    pixel with whichever colour it is nearer, which loses the thin parts of
    small players to the pitch. Each pitch pixel touching the mask is read
    as a linear mix of the mean colour of its mask neighbours and the local
    pitch colour (the mean of pitch pixels more than two pixels from the mask
    in the box of ``radius`` around it, so the grass under a shadow or a
    mowing stripe is its own), and joins the mask when the player's share
    is at least ``coverage``. Needs the ``field`` step before it.

    The mix is read in CIELAB. The reduction averaged in RGB, where a mix is
    exact, but CIELAB, which weighs lightness as the eye does, scored higher
    on the development frames and on every variant of them.

    Parameters
    ----------
    coverage : float in (0, 1], default 0.5
        Player share above which an outline pixel joins the mask; 0.5 is the
        majority rule the ground truth is reduced with.
    radius : int >= 1, default 4
        Half the side, in pixels, of the box that gives the local pitch
        colour (4: a 9 x 9 box).
    rounds : int >= 1, default 1
        Times the outline is grown, for frames whose edges blur over more
        than one pixel (upscaled footage).
    """

    needs_field = True

    def __init__(self, coverage: float = 0.5, radius: int = 4, rounds: int = 1):
        check_range("coverage", coverage, 0.0, 1.0, low_open=True)
        check_range("radius", radius, 1, integer=True)
        check_range("rounds", rounds, 1, integer=True)
        self.coverage, self.radius, self.rounds = coverage, radius, rounds

    def __call__(self, state: MaskState) -> MaskState:
        mask, pitch = state.mask, state.field & ~state.mask
        if not mask.any() or not pitch.any():
            return state
        lab = cielab(state.image)
        for _ in range(self.rounds):
            near = dilate_square(mask)
            rows, cols = np.nonzero(pitch & near & ~mask)
            if rows.size == 0:
                break
            clear = pitch & ~dilate_square(near)
            grass, counts = _box_means(lab, clear, rows, cols, self.radius)
            player = _neighbour_means(lab, mask, rows, cols)
            towards = player - grass
            share = ((lab[rows, cols] - grass) * towards).sum(-1) / np.maximum((towards * towards).sum(-1), 1e-12)
            joins = (counts > 0) & (share >= self.coverage)
            mask = mask.copy()
            mask[rows[joins], cols[joins]] = True
        return replace(state, mask=mask)
