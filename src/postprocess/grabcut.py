"""GrabCut refinement of the candidate player mask (OpenCV)."""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import replace

import cv2
import numpy as np
from scipy import ndimage as ndi

from src.errors import check_range
from src.neighbours import EIGHT
from src.postprocess.steps import MaskState

# GrabCut models each side by a Gaussian mixture of 5 components, started by k-means: a side with fewer
# pixels in a box cannot be modelled, and its blob is kept as it is
MIN_SIDE = 5


@contextmanager
def one_opencv_thread():
    """Run OpenCV on the calling thread, then restore its thread count.

    Each GrabCut here works on one player's box, a few hundred pixels, where
    OpenCV's thread pool (its k-means is parallel) costs more than it saves;
    one thread also keeps a run to the cores the ``threads`` and ``workers``
    settings give it, and no pool is left to a forked worker.
    """
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def grabcut_seeds(mask: np.ndarray, field: np.ndarray | None) -> np.ndarray:
    """GrabCut's start labels from the chain's result.

    Candidates are probable foreground (``GC_PR_FGD``), field pixels sure
    background (``GC_BGD``; the field wins where both are set), the rest
    probable background (``GC_PR_BGD``).

    Parameters
    ----------
    mask : (H, W) bool ndarray
    field : (H, W) bool ndarray or None

    Returns
    -------
    (H, W) uint8 ndarray
    """
    seeds = np.full(mask.shape, cv2.GC_PR_BGD, np.uint8)
    seeds[mask] = cv2.GC_PR_FGD
    if field is not None:
        seeds[field] = cv2.GC_BGD
    return seeds


class GrabCutRefine:
    """Refine the candidate mask by GrabCut around each player blob.

    GrabCut (OpenCV ``grabCut``, started from a mask) fits colour mixtures to
    a player and his surroundings and moves the boundary to a minimum graph
    cut between them. It runs once per connected part (8-connected) of the
    mask, on the part's bounding box padded by ``padding`` times its height
    and width per side, so its cost follows the players, not the frame. The
    start labels come from the chain so far (``grabcut_seeds``): candidates
    probable player, field sure background, the rest probable background.
    Pitch-coloured pixels a clusterer gave to a player are dropped; player
    pixels just outside the mask can join. The result is the union of the
    refined boxes; nothing outside them is kept. A box with fewer than 5
    candidate or 5 other pixels keeps its part unchanged.

    Place it after the steps that drop lines and stands: fewer, truer boxes.

    At the working sizes of this lab a far player is 10 to 40 pixels, and
    GrabCut's smoothness term erases some of them whole; more iterations
    erase more. On real frames at scale 8 it lowered Dice in every setting
    tried (see ``conf/postprocess/players_grabcut.yaml``); the defaults are
    the least harmful.

    OpenCV's k-means start is seeded by ``seed`` (``cv2.setRNGSeed``) before
    each box, so equal inputs give equal masks, and runs on one thread
    (``one_opencv_thread``). Cost: a few milliseconds per 240x135 frame.

    Parameters
    ----------
    padding : float, default 1.0, >= 0
        Margin added on each side of a part's box, as a fraction of the part's
        height (rows) and width (columns); at least one pixel. The margin is
        where GrabCut learns the background.
    iterations : int, default 1, >= 1
        GrabCut's rounds of fitting the mixtures and cutting.
    seed : int, default 0, >= 0
    """

    def __init__(self, padding: float = 1.0, iterations: int = 1, seed: int = 0):
        check_range("padding", padding, 0)
        check_range("iterations", iterations, 1, integer=True)
        check_range("seed", seed, 0, 2 ** 31 - 1, integer=True)
        self.padding = padding
        self.iterations = iterations
        self.seed = seed

    def _box(self, part: tuple[slice, slice], shape: tuple[int, int]) -> tuple[slice, slice]:
        """A part's bounding box grown by ``padding`` of its size per side, clipped to the frame."""
        grown = []
        for extent, size in zip(part, shape):
            margin = max(1, math.ceil(self.padding * (extent.stop - extent.start)))
            grown.append(slice(max(extent.start - margin, 0), min(extent.stop + margin, size)))
        return tuple(grown)

    def __call__(self, state: MaskState) -> MaskState:
        if not state.mask.any():
            return state
        parts, _ = ndi.label(state.mask, structure=EIGHT)
        seeds = grabcut_seeds(state.mask, state.field)
        bgr = np.ascontiguousarray(state.image[..., ::-1], dtype=np.uint8)
        refined = np.zeros_like(state.mask)
        with one_opencv_thread():
            for part in ndi.find_objects(parts):
                box = self._box(part, state.mask.shape)
                labels = seeds[box].copy()
                n_candidates = int(np.count_nonzero(labels == cv2.GC_PR_FGD))
                if n_candidates < MIN_SIDE or labels.size - n_candidates < MIN_SIDE:
                    refined[box] |= state.mask[box]
                    continue
                cv2.setRNGSeed(self.seed)
                cv2.grabCut(np.ascontiguousarray(bgr[box]), labels, None, np.zeros((1, 65), np.float64),
                            np.zeros((1, 65), np.float64), self.iterations, cv2.GC_INIT_WITH_MASK)
                refined[box] |= (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
        return replace(state, mask=refined)
