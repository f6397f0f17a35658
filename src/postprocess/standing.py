"""Players the pitch does not enclose: those standing in front of the boards or cut by the frame edge.

A broadcast frame shows the pitch below and the boards, crowd and stands
above it, split by the far touchline. A player at that touchline stands on
the pitch with his upper body in front of the boards, so the pitch no longer
surrounds him. This module finds that line from the field mask and keeps what
stands on the pitch below it, with the parts of it that rise above.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
from scipy import ndimage as ndi
from skimage import measure

from src.errors import LabError, check_range
from src.neighbours import EIGHT, dilate_cross, rectangle_opening
from src.postprocess.steps import EnclosedByField, MaskState


def _shift_down(mask: np.ndarray) -> np.ndarray:
    """``out[y, x] = mask[y + 1, x]``: whether the pixel below is set (the bottom row: no)."""
    out = np.zeros_like(mask)
    out[:-1] = mask[1:]
    return out


def _flanked(row: np.ndarray, field: np.ndarray, reach: int = 2) -> np.ndarray:
    """Pixels of the runs of ``row`` (W,) bool with a ``field`` pixel within ``reach`` beyond both of their ends."""
    out = np.zeros_like(row)
    padded = np.r_[False, row, False]
    starts, stops = np.flatnonzero(padded[1:] & ~padded[:-1]), np.flatnonzero(~padded[1:] & padded[:-1])
    for start, stop in zip(starts, stops):
        out[start:stop] = field[max(0, start - reach):start].any() and field[stop:stop + reach].any()
    return out


def _union(a: tuple[slice, slice], b: tuple[slice, slice]) -> tuple[slice, slice]:
    """The bounding box of two bounding boxes."""
    return tuple(slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b))


def theil_sen(values: np.ndarray, positions: np.ndarray | None = None) -> tuple[float, float]:
    """Theil-Sen line ``(slope, intercept)`` through ``values`` at ``positions`` (default x = 0, 1, 2, ...).

    The median of the slopes between every pair of points at different
    positions, and the median of the values less the slope times the median
    position: ``scipy.stats.theilslopes`` with its default intercept, without
    the confidence interval it also computes, which cost more than the rest
    of the steps that fit a line.

    Parameters
    ----------
    values : (n,) ndarray, n >= 2
    positions : (n,) ndarray, optional
        Not all equal.
    """
    values = np.asarray(values, dtype=float)
    positions = np.arange(len(values), dtype=float) if positions is None else np.asarray(positions, dtype=float)
    later, earlier = np.triu_indices(len(values), k=1)[::-1]
    apart = positions[later] - positions[earlier]
    distinct = apart != 0
    # a pair's slope is the same whichever point comes first
    slope = float(np.median((values[later] - values[earlier])[distinct] / apart[distinct]))
    return slope, float(np.median(values) - slope * np.median(positions))


def _extended(top: np.ndarray, size: int) -> np.ndarray:
    """``top`` (at least ``size`` long) continued by ``size`` values at both ends along the line fitted there.

    The line is Theil-Sen's fit (median slopes) to the ``size`` values at that
    end, so a player's dip at the edge, a minority of them, moves it little.
    """
    if size < 2:
        return np.r_[top[:1], top, top[-1:]]
    steps = np.arange(size, dtype=float)
    left_slope, left_intercept = theil_sen(top[:size])
    right_slope, right_intercept = theil_sen(top[-size:])
    return np.concatenate([left_intercept + left_slope * (steps - size), top,
                           right_intercept + right_slope * (steps + size)])


def paired_legs(below: np.ndarray, pair: float = 0.5) -> np.ndarray:
    """What of ``below`` can carry a player: parts at least two pixels wide, and legs one pixel wide in pairs.

    A far player's legs are often one pixel wide at working size. A run one
    pixel wide and at least two high stays when some other such run or wider
    part lies beside it, within ``pair`` times its height to either side:
    legs come in pairs, while a lone upright stroke is a goalpost, a line's
    fringe or noise.

    Parameters
    ----------
    below : (H, W) bool ndarray
    pair : float, default 0.5, >= 0
        0 keeps only the parts at least two pixels wide.

    Returns
    -------
    (H, W) bool ndarray
    """
    thick = rectangle_opening(below, 2, 2)
    thin = rectangle_opening(below, 2, 1) & ~thick
    strokes, n = ndi.label(thin, structure=EIGHT)
    if n == 0 or pair == 0:
        return thick
    either = thick | thin
    legs = np.zeros(n + 1, dtype=bool)
    for index, (rows, cols) in enumerate(ndi.find_objects(strokes), start=1):
        reach = max(1, round(pair * (rows.stop - rows.start)))
        beside = slice(max(0, cols.start - reach), cols.stop + reach)
        legs[index] = (either[rows, beside] & (strokes[rows, beside] != index)).any()
    return thick | legs[strokes]


def pitch_area(field: np.ndarray, window: float = 0.25, *, min_part: float = 0.1) -> np.ndarray:
    """The pitch and everything in front of it: each column from the top of the pitch down.

    The top of the pitch in a column is its highest field pixel, counting only
    parts of the field at least ``min_part`` of the largest (a green shirt
    in the crowd is no pitch). Players at the touchline hide the line and
    dip it; green boards or grass seen through a gap raise it. Both are
    narrower than the line's own course, so a grey opening and then a closing
    over ``window`` of the frame width remove them: any notch narrower than
    that is bridged. The line is continued beyond both frame edges along its
    slope there before the filters, so that where the boards slope into an
    edge it is not flattened over the last half window.

    Parameters
    ----------
    field : (H, W) bool ndarray
    window : float, default 0.25, in (0, 1]
        Fraction of the frame width; dips and rises narrower than this are
        not the pitch's own edge.
    min_part : float, default 0.1, in [0, 1]

    Returns
    -------
    (H, W) bool ndarray
        True on and below the line; all False without field.
    """
    height, width = field.shape
    parts, n = ndi.label(field, structure=EIGHT)
    if n == 0:
        return np.zeros_like(field, dtype=bool)
    sizes = np.bincount(parts.ravel())[1:]
    pitch = np.isin(parts, 1 + np.flatnonzero(sizes >= min_part * sizes.max()))
    top = np.where(pitch.any(axis=0), pitch.argmax(axis=0), height).astype(float)
    size = max(1, round(window * width))
    # the boards run on beyond the frame: extended along their slope, a line sloping into the edge is
    # not flattened over the last half window
    padded = ndi.grey_closing(ndi.grey_opening(_extended(top, size), size=size, mode="nearest"), size=size,
                              mode="nearest")
    top = padded[size:size + width]
    return np.arange(height)[:, None] >= top[None, :]


class StandingOnPitch:
    """Keep what the pitch encloses, and players standing on it where it does not.

    Candidates the field encloses are kept, as by ``EnclosedByField``. The
    others are split at the top of the pitch (``pitch_area``):

    - Below the line, each connected part (a *base*) is a player's lower
      body, or the foot of a board, a goal or a shadow. The boards' lower
      edge often shows as a strip just below the line, and a player's feet
      touching it would make him as wide as the boards. Runs along the line
      longer than ``run`` of the frame width (more than a pair of feet) in
      its top ``strip`` of the frame height are dropped, except where the
      mask goes on straight down through them (a leg); parts one pixel
      thin are dropped too, except legs in pairs (``paired_legs``).
    - Above the line, candidates are split into the connected regions of
      each cluster, so that a shirt and the board behind it, which differ in
      colour, part. A region joins a base (or a region already joined) that
      it touches when it lies within the base's columns widened by ``span``
      of the joined height on either side (an arm's reach), and the joined
      whole stays at most ``tall`` times as high as wide and at most
      ``wide`` times as wide as high. Lower regions are judged first, each
      against the player as grown so far. Boards and crowd strips are wider
      than any player; a crowd column on top of a player would make him too
      tall. ``rounds`` bounds the chain (legs, shirt, head).
    - Boards repeat along the line and a player does not. A region whose
      cluster covers at least ``recurrence`` times the region's size in
      the same rows above the line, beyond its reach, is the boards' ground
      or lettering and joins no one. A region that does not recur joins
      when its centre lies within the reach and it is no wider than the
      player's columns widened by the reach on both sides, so a torso with
      arms out to one side is kept, and a board's piece running on
      sideways beyond him is not.

    A base and what joined it stay when the whole is upright (width at most
    ``wide`` times height) and at least ``contact`` of the base's lowest
    pixels have pitch right below them: feet on the grass. A goal's crossbar
    is too wide; a board's foot without a player above it too flat. The
    frame's edges cut close-ups: a part that the top edge cuts where the
    pitch reaches it is taller than it shows, so it is not held to the
    upright test, and feet that the frame's foot cuts off rest on the pitch
    where pitch lies right beside them on both sides along that edge (not
    where they meet a side edge of the frame as well).

    Every test is a ratio of the object's own size or of the frame, so wide
    shots and close-ups are treated alike; only the flank of cut-off feet is
    read in pixels, as the two beside them (a blended outline pixel and the
    grass beyond) at any scale.

    Parameters
    ----------
    border_fraction : float, default 0.5, in [0, 1]
        As for ``EnclosedByField``.
    window : float, default 0.25, in (0, 1]
        As for ``pitch_area``.
    span : float, default 0.25, >= 0
    tall : float, default 4.0, > 0
    wide : float, default 1.0, > 0
    contact : float, default 0.5, in [0, 1]
    rounds : int, default 4, >= 0
    strip : float, default 0.015, in [0, 1]
        Fraction of the frame height below the line searched for the boards'
        edge; 0 keeps every base whole.
    run : float, default 0.05, in (0, 1]
        Fraction of the frame width above which a run along the line is the
        boards' edge.
    recurrence : float or None, default 8.0, >= 0
        None: no recurrence test, and a region must lie wholly within the
        reach.
    pair : float, default 0.5, >= 0
        As for ``paired_legs``.
    """

    needs_field = True

    def __init__(self, border_fraction: float = 0.5, window: float = 0.25, span: float = 0.25, tall: float = 4.0,
                 wide: float = 1.0, contact: float = 0.5, rounds: int = 4, strip: float = 0.015,
                 run: float = 0.05, recurrence: float | None = 8.0, pair: float = 0.5):
        check_range("window", window, 0, 1, low_open=True)
        check_range("span", span, 0)
        check_range("tall", tall, 0, low_open=True)
        check_range("wide", wide, 0, low_open=True)
        check_range("contact", contact, 0, 1)
        check_range("rounds", rounds, 0, integer=True)
        check_range("strip", strip, 0, 1)
        check_range("run", run, 0, 1, low_open=True)
        check_range("pair", pair, 0)
        if recurrence is not None:
            check_range("recurrence", recurrence, 0)
        self.recurrence = recurrence
        self.enclosed = EnclosedByField(border_fraction)
        self.window, self.span, self.tall, self.wide = window, span, tall, wide
        self.contact, self.rounds, self.strip, self.run, self.pair = contact, rounds, strip, run, pair

    def __call__(self, state: MaskState) -> MaskState:
        if state.field is None:
            raise LabError("StandingOnPitch needs a field mask; run FieldClusters before it")
        enclosed = self.enclosed(state).mask
        area = pitch_area(state.field, self.window)
        bases = self._bases(paired_legs(state.mask & area & ~enclosed, self.pair), area)
        above = state.mask & ~area & ~enclosed
        # +2 keeps noise (-1) a region of its own; 0 is "not a candidate"
        colours = np.where(above, state.labels + 2, 0)
        regions = measure.label(colours, background=0, connectivity=1)
        kept = self._grow(enclosed | bases, regions, colours)
        return replace(state, mask=enclosed | self._standing(kept, bases, state.field, area))

    def _bases(self, below: np.ndarray, area: np.ndarray) -> np.ndarray:
        """``below`` without the boards' lower edge: long runs in the top ``strip`` rows of ``area``.

        A pixel of such a run stays when the mask goes on straight down from it
        past those rows: a leg crossing the edge, not the edge itself.
        """
        rows = round(self.strip * area.shape[0])
        if rows == 0:
            return below
        band = area & (np.cumsum(area, axis=0) <= rows)
        run = max(2, round(self.run * area.shape[1]))
        edge = np.zeros_like(band)
        used = np.flatnonzero(band.any(axis=1))
        if len(used):  # a one-row opening: the band's rows alone give the same result, much faster
            span = slice(used[0], used[-1] + 1)
            edge[span] = rectangle_opening(below[span] & band[span], 1, run)
        legs = below & ~band
        for _ in range(rows):
            legs |= edge & _shift_down(legs)
        return (below & ~edge) | legs

    def _grow(self, kept: np.ndarray, regions: np.ndarray, colours: np.ndarray) -> np.ndarray:
        """Add the regions above the line that pass the span, recurrence and shape tests, round by round."""
        n_regions = int(regions.max())
        if n_regions == 0:
            return kept
        # boxes only of the regions that touch a player: the crowd above the line has thousands
        region_boxes: dict[int, tuple[slice, slice]] = {}
        recurs = _Recurrence(regions, colours, region_boxes)
        for _ in range(self.rounds):
            players, _ = ndi.label(kept, structure=EIGHT)
            player_boxes = ndi.find_objects(players)
            touching = dilate_cross(kept) & (regions > 0) & ~kept
            neighbour = dilate_cross(players)
            pairs = np.unique(np.stack([regions[touching], neighbour[touching]]), axis=1)
            region_boxes.update(_boxes(regions, np.setdiff1d(pairs[0], list(region_boxes)), n_regions))
            # lowest regions first, each judged against the player as grown so far
            pairs = pairs[:, np.argsort([-region_boxes[r][0].stop for r in pairs[0]], kind="stable")]
            joined = set()
            for region, player in pairs.T:
                if player and region not in joined and self._joins(region_boxes[region], player_boxes[player - 1],
                                                                   partial(recurs, region)):
                    joined.add(region)
                    player_boxes[player - 1] = _union(region_boxes[region], player_boxes[player - 1])
            if not joined:
                break
            kept = kept | np.isin(regions, list(joined))
        return kept

    def _joins(self, region: tuple[slice, slice], player: tuple[slice, slice], recurring) -> bool:
        """Whether ``region`` joins ``player`` (boxes); ``recurring(reach)`` gives how often its colour recurs."""
        rows, cols = region
        height = max(rows.stop, player[0].stop) - min(rows.start, player[0].start)
        width = max(cols.stop, player[1].stop) - min(cols.start, player[1].start)
        if not (height <= self.tall * width and width <= self.wide * height):
            return False
        reach = self.span * height
        if cols.start >= player[1].start - reach and cols.stop <= player[1].stop + reach:
            return self.recurrence is None or recurring(reach) < self.recurrence
        # off-centre (an arm out to one side) but no wider than his reach on both sides: a board's piece
        # that the player and the crowd cut out runs on sideways well beyond him
        centre = (cols.start + cols.stop) / 2
        return (self.recurrence is not None and player[1].start - reach <= centre <= player[1].stop + reach
                and cols.stop - cols.start <= player[1].stop - player[1].start + 2 * reach
                and recurring(reach) < self.recurrence)

    def _standing(self, kept: np.ndarray, bases: np.ndarray, field: np.ndarray, area: np.ndarray) -> np.ndarray:
        """The connected parts of ``kept`` with a base that are upright and stand on the pitch (``area``: on and
        below the pitch's top line). A part the frame's top row cuts within ``area`` need not be upright; the
        frame's last row rests on the pitch where ``_flanked`` says so."""
        players, n = ndi.label(kept, structure=EIGHT)
        if n == 0:
            return kept
        boxes = ndi.find_objects(players)
        heights = np.array([0] + [b[0].stop - b[0].start for b in boxes])
        widths = np.array([0] + [b[1].stop - b[1].start for b in boxes])
        lowest = bases & ~_shift_down(kept)
        edges = np.bincount(players[lowest], minlength=n + 1)
        # feet the frame's foot cuts off stand on the pitch beyond it when pitch flanks them along that edge
        ground = _shift_down(field)
        ground[-1] = _flanked(kept[-1], field[-1])
        on_pitch = np.bincount(players[lowest & ground], minlength=n + 1)
        # a player the frame's top cuts in front of the pitch is taller than he shows
        cut = np.bincount(players[0][area[0]], minlength=n + 1) > 0
        standing = ((widths <= self.wide * heights) | cut) & (on_pitch >= self.contact * np.maximum(edges, 1))
        standing &= np.bincount(players[bases], minlength=n + 1) > 0
        standing[0] = False
        return standing[players]


def _boxes(labels: np.ndarray, ids: np.ndarray, n_labels: int) -> dict[int, tuple[slice, slice]]:
    """Bounding boxes of the labels ``ids`` of ``labels`` (values ``0..n_labels``), by label."""
    if len(ids) == 0:
        return {}
    lookup = np.zeros(n_labels + 1, dtype=np.int32)
    lookup[ids] = np.arange(1, len(ids) + 1)
    return dict(zip(ids.tolist(), ndi.find_objects(lookup[labels], max_label=len(ids))))


class _Recurrence:
    """How many times its own size a region's colour covers in its rows, beyond its columns widened by a reach."""

    def __init__(self, regions: np.ndarray, colours: np.ndarray, boxes: dict[int, tuple[slice, slice]]):
        height = regions.shape[0]
        self.colours, self.boxes = colours, boxes
        self.sizes = np.bincount(regions.ravel())
        self.colour = np.zeros(len(self.sizes), dtype=colours.dtype)
        self.colour[regions.ravel()] = colours.ravel()
        rows = np.broadcast_to(np.arange(height)[:, None], regions.shape)
        self.per_row = np.bincount((colours * height + rows).ravel(),
                                   minlength=(colours.max() + 1) * height).reshape(-1, height)

    def __call__(self, region: int, reach: float) -> float:
        rows, cols = self.boxes[region]
        colour = self.colour[region]
        near = slice(max(0, int(cols.start - reach)), int(cols.stop + reach))
        elsewhere = self.per_row[colour, rows].sum() - np.count_nonzero(self.colours[rows, near] == colour)
        return elsewhere / self.sizes[region]


__all__ = ["StandingOnPitch", "paired_legs", "pitch_area"]
