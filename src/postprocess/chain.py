"""Label map in, binary player mask and its components out."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from skimage import measure

from src.errors import LabError, check_choice, check_range
from src.labels import coordinate_means
from src.postprocess.picture import overlay_top, picture_area
from src.postprocess.steps import MaskState


@dataclass(frozen=True)
class PlayerMask:
    """Result of post-processing.

    mask : (H, W) bool, player pixels.
    components : (H, W) int, 0 = background, 1..n = one connected player blob.
    centroids : (n, 2) float, (row, col) of each component.
    reasons : why a step emptied the mask, e.g. ``{"no_field"}`` for a frame without pitch.
    """

    mask: np.ndarray
    components: np.ndarray
    centroids: np.ndarray
    reasons: frozenset = frozenset()

    @property
    def n_components(self) -> int:
        return len(self.centroids)


def connected_components(mask: np.ndarray, connectivity: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Label the connected parts of ``mask`` and return ``(components, centroids)``.

    Parameters
    ----------
    mask : (H, W) bool ndarray
    connectivity : {1, 2}, default 2
        1 joins pixels sharing an edge, 2 also those sharing a corner.
    """
    components, n = measure.label(mask, connectivity=connectivity, return_num=True)
    # all components' coordinate means in one pass of counts (scipy's center_of_mass walks them one by one)
    return components, coordinate_means(components, n)


def majority(players: list[PlayerMask], connectivity: int = 2) -> PlayerMask:
    """The pixels that more than half of ``players`` hold, with its components and centroids.

    Several seeded clusterings of one frame, post-processed in turn, differ
    where a cluster boundary or a selection decision was close; the majority
    keeps what they agree on. A reason (``no_field``) holds when more than half
    of them give it.

    Parameters
    ----------
    players : non-empty list of PlayerMask, all of one shape
    connectivity : {1, 2}, default 2
    """
    if not players:
        raise LabError("majority needs at least one player mask")
    counts = np.sum([player.mask for player in players], axis=0)
    mask = counts * 2 > len(players)
    given = [reason for player in players for reason in player.reasons]
    reasons = frozenset(reason for reason in given if given.count(reason) * 2 > len(players))
    components, centroids = connected_components(mask, connectivity)
    return PlayerMask(mask=mask, components=components, centroids=centroids, reasons=reasons)


class PostprocessChain:
    """Run steps in order on the candidate mask, then find connected components.

    The starting candidates are all pixels. Kept clusters that touch one
    another (a player's shirt, shorts and skin) end up in one component, which
    is how adjacent small clusters are merged into one player.

    The steps see only the picture inside black bars along the frame's
    edges (``picture_area``) and above a ticker laid along its foot
    (``overlay_top``), so that for them the picture's edge is the frame's:
    a player the bar or ticker cuts is cut by the frame, and the bar is no
    candidate. Pixels in the bars and the ticker are never players.

    Parameters
    ----------
    steps : mapping of name -> step
        Callables ``MaskState -> MaskState``, run in the mapping's order;
        a None entry is skipped, so a step can be switched off from the
        command line with ``postprocess.steps.<name>=null``.
    connectivity : {1, 2}, default 2
    black_bars : int or None, default 40, in [0, 255]
        Brightest value of a bar's pixels (``picture_area``'s ``black``);
        None: the steps see the whole frame.
    ticker : float or None, default 0.15, in [0, 1]
        Deepest reach of a ticker along the bottom edge, as a fraction of
        the picture's height (``overlay_top``'s ``depth``); None: no ticker.
    """

    def __init__(self, steps: Mapping, connectivity: int = 2, black_bars: int | None = 40,
                 ticker: float | None = 0.15):
        check_choice("connectivity", connectivity, {1, 2})
        if black_bars is not None:
            check_range("black_bars", black_bars, 0, 255, integer=True)
        if ticker is not None:
            check_range("ticker", ticker, 0, 1)
        self.ticker = ticker
        for name, step in steps.items():
            if step is not None and not callable(step):
                raise LabError(f"steps.{name}={step!r} is not a step; switch it off with null", key=f"steps.{name}")
        self.steps = {name: step for name, step in steps.items() if step is not None}
        self.connectivity = connectivity
        self.black_bars = black_bars
        field = False
        for name, step in self.steps.items():
            if getattr(step, "needs_field", False) and not field:
                raise LabError(f"steps.{name} needs a field mask; put the 'field' step before it", key=f"steps.{name}")
            field = field or getattr(step, "gives_field", False)

    def __call__(self, labels: np.ndarray, image: np.ndarray, *, seconds: dict[str, float] | None = None
                 ) -> PlayerMask:
        """Turn a label map (H, W) and its image (H, W, 3) into a PlayerMask.

        ``seconds``, when given, gains each step's wall-clock seconds under the
        step's name (added to what it holds), so that a profile can say which
        step a chain's time goes to (``src.benchmark``).
        """
        area = (slice(0, image.shape[0]), slice(0, image.shape[1])) if self.black_bars is None else picture_area(
            image, self.black_bars)
        if self.ticker is not None:
            area = slice(area[0].start, area[0].start + overlay_top(image[area], self.ticker)), area[1]
        # the whole frame passes as itself, not as a view of it, so the steps find the CIELAB that the features
        # converted (src.cielab keeps the last frame's)
        whole = all(part.indices(size) == (0, size, 1) for part, size in zip(area, image.shape))
        picture_labels, picture = (labels, image) if whole else (labels[area], image[area])
        state = MaskState(labels=picture_labels, image=picture, mask=np.ones(picture_labels.shape, dtype=bool))
        for name, step in self.steps.items():
            start = time.perf_counter()
            state = step(state)
            if seconds is not None:
                seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        mask = np.zeros(labels.shape, dtype=bool)
        mask[area] = state.mask
        components, centroids = connected_components(mask, self.connectivity)
        return PlayerMask(mask=mask, components=components, centroids=centroids, reasons=state.reasons)
