"""Pixels on a player's outline: blends of his colour and the grass, given to whichever covers more of them."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import ndimage as ndi
from skimage import color

from src.errors import check_range
from src.postprocess.steps import MaskState

_NEIGHBOURS = np.ones((3, 3), dtype=bool)


def _local_mean(image: np.ndarray, weight: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour of the pixels where ``weight`` is set in a ``size`` x ``size`` box, and that box's weight."""
    weight = weight.astype(np.float64)
    total = ndi.uniform_filter(weight, size, mode="constant")
    sums = np.stack([ndi.uniform_filter(image[..., channel] * weight, size, mode="constant")
                     for channel in range(image.shape[-1])], axis=-1)
    return sums / np.maximum(total, 1e-12)[..., None], total


class BlendedEdges:
    """Add to the mask the pitch pixels along its outline that are mostly player.

    A frame reduced to working size averages each pixel over a box of the
    original, so a pixel on a player's outline is a blend of his colour and
    the grass behind him, and ground truth reduced the same way counts it as
    player where he covers at least half of it. A clustering puts such a
    pixel with whichever colour it is nearer, which loses the thin parts of
    small players to the pitch. Each pitch pixel touching the mask is read
    as a linear mix of the mean colour of its mask neighbours and the local
    pitch colour (the mean of pitch pixels at least two pixels from the mask
    in a ``window`` x ``window`` box, so the grass under a shadow or a
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
    window : int >= 3, default 9
        Side in pixels of the box that gives the local pitch colour.
    rounds : int >= 1, default 1
        Times the outline is grown, for frames whose edges blur over more
        than one pixel (upscaled footage).
    """

    needs_field = True

    def __init__(self, coverage: float = 0.5, window: int = 9, rounds: int = 1):
        check_range("coverage", coverage, 0.0, 1.0, low_open=True)
        check_range("window", window, 3, integer=True)
        check_range("rounds", rounds, 1, integer=True)
        self.coverage, self.window, self.rounds = coverage, window, rounds

    def __call__(self, state: MaskState) -> MaskState:
        mask, pitch = state.mask, state.field & ~state.mask
        if not mask.any() or not pitch.any():
            return state
        image = color.rgb2lab(state.image)
        for _ in range(self.rounds):
            outline = pitch & ~mask & ndi.binary_dilation(mask, _NEIGHBOURS)
            if not outline.any():
                break
            grass, grass_weight = _local_mean(image, pitch & ~ndi.binary_dilation(mask, _NEIGHBOURS, iterations=2),
                                              self.window)
            player, _ = _local_mean(image, mask, 3)
            towards = player - grass
            share = ((image - grass) * towards).sum(-1) / np.maximum((towards * towards).sum(-1), 1e-12)
            mask = mask | (outline & (grass_weight > 0) & (share >= self.coverage))
        return replace(state, mask=mask)
