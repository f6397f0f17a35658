"""Post-processing steps: each maps a ``MaskState`` to a new one, inputs never mutated.

A state carries the label map, the image, the current candidate player mask
and, once a step has found it, the field (pitch) mask.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi
from skimage import color, graph, measure, morphology
from sklearn.cluster import KMeans

from src.cielab import cielab
from src.errors import LabError, check_choice, check_range, check_seed
from src.labels import coordinate_means, label_means
from src.neighbours import EIGHT, rectangle_opening


@dataclass(frozen=True)
class MaskState:
    """What flows between steps.

    labels : (H, W) int, -1 = noise.  image : (H, W, 3) uint8.
    mask : (H, W) bool, candidate player pixels.  field : (H, W) bool or None.
    reasons : frozenset of str, why a step emptied the mask (``"no_field"``).
    """

    labels: np.ndarray
    image: np.ndarray
    mask: np.ndarray
    field: np.ndarray | None = None
    reasons: frozenset = frozenset()


def cluster_mean_colors(labels: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CIELAB colour of the mean RGB of each cluster id ``0..labels.max()``, and its pixel count.

    Averaging in RGB and converting K means, rather than converting every
    pixel, keeps this step cheap; within a cluster the two differ little.

    Returns
    -------
    means : (K, 3) float ndarray
    counts : (K,) int ndarray
    """
    # the sums of the uint8 values, scaled once per cluster: a float copy of the frame cost more than the sums
    mean_rgb, counts = label_means(image.reshape(-1, 3), labels)
    return color.rgb2lab(mean_rgb[None] / 255.0).reshape(-1, 3), counts


def cluster_modes(labels: np.ndarray, lab: np.ndarray, means: np.ndarray, radius: float, *,
                  steps: int = 2) -> np.ndarray:
    """Each cluster's colour where most of its pixels lie: its mean moved ``steps`` times to the mean of its
    pixels within ``radius`` (Delta E) of it, as mean shift moves a window.

    A density clustering of CNN features can join the pitch and the crowd in
    one cluster, whose plain mean is a blend of both; the mean of its pixels
    near that blend, refined, is the colour of its larger part. A cluster with
    no pixel within ``radius`` keeps its mean.

    Parameters
    ----------
    labels : (H, W) int ndarray
        Cluster ids ``0..K-1``; negative ids (noise) are left out.
    lab : (H, W, 3) ndarray
        The frame in CIELAB.
    means : (K, 3) ndarray
        Each cluster's mean CIELAB colour (``cluster_mean_colors``).
    radius : float, > 0
    steps : int, default 2, >= 0

    Returns
    -------
    (K, 3) float ndarray, a new array.
    """
    flat = labels.ravel()
    valid = flat >= 0
    ids = flat[valid]
    # a channel at a time, on contiguous planes: gathers of (N, 3) rows cost twice as much
    channels = [np.ascontiguousarray(lab[..., c]).ravel()[valid] for c in range(3)]
    # the sums' weights once in double precision, which bincount would convert them to at every step
    weights = [values.astype(np.float64) for values in channels]
    k = len(means)
    modes = np.array(means, dtype=np.float64)
    for _ in range(steps):
        squared = np.zeros(ids.size, dtype=np.float32)
        for c, values in enumerate(channels):
            offset = values - modes[:, c].astype(np.float32)[ids]
            squared += offset * offset
        near = squared < radius * radius
        if not near.any():
            break
        # pixels beyond the radius go to a bin of their own: cheaper than gathering the near ones
        binned = np.where(near, ids, k)
        counts = np.bincount(binned, minlength=k + 1)[:k]
        sums = np.stack([np.bincount(binned, weights=values, minlength=k + 1)[:k] for values in weights], axis=1)
        modes = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], modes)
    return modes


# lights tried between shade and 1 / shade, evenly on a log scale
LIGHT_STEPS = 41


class FieldClusters:
    """The field is the colour that covers most of the frame: one cluster and all of similar colour.

    Broadcast frames are dominated by the pitch, so its colour is found rather
    than fixed. For each cluster, the pixels of every cluster whose mean
    CIELAB colour lies within ``max_distance`` (Delta E 1976) of its own are
    added up; the cluster with the largest such area seeds the field, and the
    clusters within ``max_distance`` of the seed form it. Counting similar
    clusters together keeps this right for over-segmentations (superpixels),
    where the pitch is many small clusters. Every other pixel, noise
    included, stays a candidate.

    A pitch is grass: when the dominant colour is not green (CIELAB a* at
    or above ``max_green_a``), the frame shows no pitch (a crowd shot, a
    replay graphic) and its mask is empty, with the reason ``no_field``.

    A stadium roof's shadow splits one pitch into two greens far apart in
    lightness. A cluster also counts as field when the seed's colour under
    another light, its linear RGB scaled by a factor between ``shade`` and
    1 / ``shade``, comes within ``max_distance`` of it; in dimmer light the
    radius shrinks with the square of the lightness ratio, since colour
    differences fade with the light and dark kits must not pass for grass
    in the shade. Sun falls on a pitch in wide areas, while a fluorescent
    yellow-green kit (a keeper's or an away kit) has the colour of sunlit
    grass on a player's few pixels: pixels matched only in brighter light
    than the seed's are pitch where they form connected parts of at least
    ``lit_min_area`` of the frame. A darker part needs no size, since a
    player's own shadow on sunlit grass is small.

    A washed-out picture (haze, floodlights, a flat camera profile) shrinks
    every colour difference along with the pitch's saturation, and a fixed
    radius would then take most of the frame for one colour and pick a grey
    seed. The radius is therefore at most ``chroma_limit`` times the seed's
    own chroma (CIELAB ``sqrt(a*^2 + b*^2)``): at 1, a grey as light as the
    pitch is never pitch.

    A cluster is judged by the colour of its larger part (``cluster_modes``
    within ``max_distance``): a clustering of CNN features can join the
    pitch and the crowd, and their blend is the colour of neither. A
    clustering that weighs position (or a coarse one) gives the grass
    around a small player his pixels too, and a kit near the pitch's hue
    shares a cluster with it. A pixel of a field cluster whose own colour
    lies farther than ``pixel_radius`` times the radius from its cluster's
    colour is therefore no pitch either, and stays a candidate.

    Parameters
    ----------
    max_distance : float, default 25.0
        Delta E below which a cluster counts as field; about 10 separates
        barely different shades, 50 merges unrelated colours.
    chroma_limit : float or None, default 1.0, > 0
        Cap on the radius, as a multiple of the seed's chroma; None: no cap.
    max_green_a : float or None, default 0.0
        The field's mean a* must be below this (negative a* is green); None
        accepts any colour as the pitch.
    shade : float or None, default 0.25, in (0, 1]
        The darkest light, as a share of the seed's, in which the pitch is
        still matched (sun against shade on a pitch is often 3 to 5 times);
        None or 1 matches the seed's own light only.
    lit_min_area : float, default 0.02, in [0, 1]
        Smallest connected part of pitch in brighter light, as a share of
        the frame; 0 takes every part.
    pixel_radius : float or None, default 1.0, > 0
        Distance of a field cluster's pixel from its cluster's mean colour,
        as a multiple of the radius, beyond which it is no pitch; None
        judges whole clusters only.
    """

    #: sets ``MaskState.field``, which later steps may need
    gives_field = True

    def __init__(self, max_distance: float = 25.0, max_green_a: float | None = 0.0, shade: float | None = 0.25,
                 chroma_limit: float | None = 1.0, pixel_radius: float | None = 1.0, lit_min_area: float = 0.02):
        check_range("max_distance", max_distance, 0, low_open=True)
        check_range("lit_min_area", lit_min_area, 0, 1)
        self.lit_min_area = lit_min_area
        if pixel_radius is not None:
            check_range("pixel_radius", pixel_radius, 0, low_open=True)
        self.pixel_radius = pixel_radius
        if chroma_limit is not None:
            check_range("chroma_limit", chroma_limit, 0, low_open=True)
        self.chroma_limit = chroma_limit
        if max_green_a is not None:
            check_range("max_green_a", max_green_a)
        self.max_distance = max_distance
        self.max_green_a = max_green_a
        if shade is not None:
            check_range("shade", shade, 0, 1, low_open=True)
        self.shade = shade

    def __call__(self, state: MaskState) -> MaskState:
        means, counts = cluster_mean_colors(state.labels, state.image)
        if counts.sum() == 0:
            return replace(state, field=np.zeros_like(state.mask))
        seed, radius = self._seed(means, counts)
        if self.max_green_a is not None and means[seed, 1] >= self.max_green_a:
            empty = np.zeros_like(state.mask)
            return replace(state, mask=empty, field=empty, reasons=state.reasons | {"no_field"})
        similar = np.linalg.norm(means - means[seed], axis=-1) < radius
        lit = self._in_other_light(means, means[seed], radius) & ~similar
        near = (similar | lit) & (counts > 0)
        ids = np.clip(state.labels, 0, None)
        field = (state.labels >= 0) & near[ids]
        if self.pixel_radius is not None:
            lab = cielab(state.image)
            modes = cluster_modes(np.where(field, state.labels, -1), lab, means, self.pixel_radius * radius)
            field &= _near_own_mean(lab, modes, ids, self.pixel_radius * radius)
        field &= ~self._small_lit_parts(field & (lit & (means[:, 0] > means[seed, 0]))[ids])
        return replace(state, mask=state.mask & ~field, field=field)

    def _small_lit_parts(self, brighter: np.ndarray) -> np.ndarray:
        """The connected parts of ``brighter`` (8-connected) smaller than ``lit_min_area`` of the frame."""
        if self.lit_min_area == 0 or not brighter.any():
            return np.zeros_like(brighter)
        parts, n = ndi.label(brighter, structure=EIGHT)
        small = np.bincount(parts.ravel(), minlength=n + 1) < self.lit_min_area * brighter.size
        small[0] = False
        return small[parts]

    def _seed(self, means: np.ndarray, counts: np.ndarray) -> tuple[int, float]:
        """The cluster with the most pixels of similar colour, and its radius.

        With the chroma cap each cluster has its own radius; two clusters are
        alike within the smaller of theirs, so neither a grey cluster nor a
        more colourful neighbour of the pitch gathers the pitch's shades.
        """
        radii = np.full(len(means), float(self.max_distance))
        if self.chroma_limit is not None:
            radii = np.minimum(radii, self.chroma_limit * np.hypot(means[:, 1], means[:, 2]))
        similar = np.linalg.norm(means[:, None] - means[None], axis=-1) < np.minimum(radii[:, None], radii[None])
        seed = int(np.argmax(similar.astype(np.float64) @ counts))
        return seed, float(radii[seed])

    def _in_other_light(self, means: np.ndarray, seed: np.ndarray, radius: float) -> np.ndarray:
        """Which Lab colours ``means`` (K, 3) lie within ``radius`` of ``seed`` in a light ``shade``..1/``shade``."""
        if self.shade is None or self.shade >= 1:
            return np.zeros(len(means), dtype=bool)
        # scaling linear RGB by f scales sRGB by about f ** (1 / 2.2)
        factors = np.geomspace(self.shade, 1 / self.shade, LIGHT_STEPS) ** (1 / 2.2)
        seed_rgb = color.lab2rgb(seed[None, None])[0, 0]
        lit = color.rgb2lab(np.clip(factors[:, None] * seed_rgb[None], 0, 1)[None])[0]
        dimmer = np.clip(lit[:, 0] / max(seed[0], 1e-6), 1e-6, 1.0)
        distance = np.linalg.norm(means[:, None] - lit[None], axis=-1) / dimmer[None] ** 2
        return distance.min(axis=1) < radius


def _near_own_mean(lab: np.ndarray, means: np.ndarray, ids: np.ndarray, radius: float) -> np.ndarray:
    """Whether each pixel of ``lab`` (H, W, 3) lies within ``radius`` (Delta E) of ``means[ids]``, its cluster's
    colour; a channel at a time, as a gather of (H, W, 3) offsets cost ten times more than the test."""
    squared = np.zeros(ids.shape)
    for channel in range(3):
        offset = lab[..., channel] - means[:, channel][ids]
        squared += offset * offset
    return squared < radius * radius


class EnclosedByField:
    """Keep candidates that the field surrounds: players stand on the pitch.

    Candidates are holes of the field mask. A frame border along which the
    field covers more than ``border_fraction`` is treated as field beyond the
    frame, so a player cut by that border still counts as enclosed; stands
    and boards, which meet the frame where the field does not, stay out.

    Parameters
    ----------
    border_fraction : float, default 0.5, in [0, 1]
    """

    needs_field = True

    def __init__(self, border_fraction: float = 0.5):
        check_range("border_fraction", border_fraction, 0, 1)
        self.border_fraction = border_fraction

    def __call__(self, state: MaskState) -> MaskState:
        if state.field is None:
            raise LabError("EnclosedByField needs a field mask; run FieldClusters before it")
        padded = np.pad(state.field, 1, constant_values=False)
        for side in ((0, slice(None)), (-1, slice(None)), (slice(None), 0), (slice(None), -1)):
            if state.field[side].mean() > self.border_fraction:
                padded[side] = True
        inside = fill_holes(padded)[1:-1, 1:-1]
        return replace(state, mask=state.mask & inside)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled: ``scipy.ndimage.binary_fill_holes`` with its default structure.

    A hole is a 4-connected part of the background that does not reach the
    array's edge. One labelling of the background finds them all, where
    scipy's fill propagates the outside one pixel layer at a time (several
    times slower on a frame).

    Parameters
    ----------
    mask : (H, W) bool ndarray

    Returns
    -------
    (H, W) bool ndarray, a new array.
    """
    background, n = ndi.label(~mask)
    outside = np.zeros(n + 1, dtype=bool)
    for edge in (background[0], background[-1], background[:, 0], background[:, -1]):
        outside[edge] = True
    outside[0] = False
    return ~outside[background]


class DropLargeClusters:
    """Drop clusters covering more than ``max_fraction`` of the image: they are stuff, not players.

    Parameters
    ----------
    max_fraction : float, default 0.05, in (0, 1]
    """

    def __init__(self, max_fraction: float = 0.05):
        check_range("max_fraction", max_fraction, 0, 1, low_open=True)
        self.max_fraction = max_fraction

    def __call__(self, state: MaskState) -> MaskState:
        flat = state.labels.reshape(-1)
        k = int(flat.max()) + 1 if (flat >= 0).any() else 0
        large = np.bincount(flat[flat >= 0], minlength=k) > self.max_fraction * flat.size
        dropped = (state.labels >= 0) & large[np.clip(state.labels, 0, None)] if k else np.zeros_like(state.mask)
        return replace(state, mask=state.mask & ~dropped)


class RemoveThin:
    """Remove structures thinner than ``width`` pixels, such as pitch lines.

    Opening by reconstruction: only connected parts of the mask that contain a
    ``width x width`` square survive, and they survive whole. The mask is
    taken to go on beyond the frame's edge, so the sliver of a player the
    edge cuts survives where a line that runs into the edge does not.

    Parameters
    ----------
    width : int, default 2
    """

    def __init__(self, width: int = 2):
        check_range("width", width, 1, integer=True)
        self.width = width

    def __call__(self, state: MaskState) -> MaskState:
        if self.width == 1 or not state.mask.any():
            return state
        pad = self.width - 1
        seed = rectangle_opening(np.pad(state.mask, pad, mode="edge"), self.width, self.width)[pad:-pad, pad:-pad]
        parts, _ = ndi.label(state.mask, structure=np.ones((3, 3), bool))
        kept = np.isin(parts, np.unique(parts[seed]))
        return replace(state, mask=kept & state.mask)


class RemoveLines:
    """Remove connected parts of the mask far longer than wide: pitch markings, not players.

    The elongation of a part is the ratio of the major to the minor axis of
    the ellipse with its second moments (scikit-image ``regionprops``). A
    player, even striding or with an arm out, stays below about 7; a pitch
    line is a long straight band whatever the zoom, where ``RemoveThin``'s
    fixed width fails once the camera is close. A part the frame's edge cuts
    (``cut_by_border``) is a player's sliver, however long, and stays.

    Parameters
    ----------
    max_elongation : float, default 10.0, > 1
    """

    def __init__(self, max_elongation: float = 10.0):
        check_range("max_elongation", max_elongation, 1, low_open=True)
        self.max_elongation = max_elongation

    def __call__(self, state: MaskState) -> MaskState:
        parts, n = ndi.label(state.mask, structure=np.ones((3, 3), bool))
        if n == 0:
            return state
        major, minor = axis_lengths(parts, n)
        lines = (major > self.max_elongation * np.maximum(minor, 1.0)) & ~cut_by_border(parts, n)
        if not lines.any():
            return state
        return replace(state, mask=state.mask & ~np.concatenate([[False], lines])[parts])


def cut_by_border(parts: np.ndarray, n: int, share: float = 0.5) -> np.ndarray:
    """Which parts ``1..n`` the frame's edge cuts: slivers lying along an edge.

    A part is cut when it is at least as long along an edge as across it and
    touches that edge over at least ``share`` of that length. A player cut
    by the edge leaves such a sliver against it; a pitch line that runs into
    the edge meets it across, with its width only.

    Parameters
    ----------
    parts : (H, W) int ndarray
        0 = background, 1..n = parts.
    n : int
    share : float, default 0.5

    Returns
    -------
    (n,) bool ndarray
    """
    boxes = ndi.find_objects(parts, max_label=n)
    heights = np.array([b[0].stop - b[0].start for b in boxes])
    widths = np.array([b[1].stop - b[1].start for b in boxes])
    cut = np.zeros(n, dtype=bool)
    for edge, along, across in ((parts[:, 0], heights, widths), (parts[:, -1], heights, widths),
                                (parts[0], widths, heights), (parts[-1], widths, heights)):
        cut |= (np.bincount(edge, minlength=n + 1)[1:] >= share * along) & (along >= across)
    return cut


def axis_lengths(parts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Major and minor axis lengths of the ellipse with the second moments of each part ``1..n``.

    The values of scikit-image's ``regionprops`` ``axis_major_length`` and
    ``axis_minor_length`` (four times the root of each eigenvalue of the
    pixel coordinates' covariance), for all parts in one pass of counts
    instead of one Python object per part.

    Parameters
    ----------
    parts : (H, W) int ndarray
        0 = background, 1..n = parts.
    n : int

    Returns
    -------
    major, minor : (n,) float ndarray
    """
    mean_r, mean_c, mean_rr, mean_cc, mean_rc = coordinate_means(parts, n, second=True).T
    var_r, var_c, cov = mean_rr - mean_r ** 2, mean_cc - mean_c ** 2, mean_rc - mean_r * mean_c
    centre, spread = (var_r + var_c) / 2, np.sqrt(((var_r - var_c) / 2) ** 2 + cov ** 2)
    return 4 * np.sqrt(np.maximum(centre + spread, 0)), 4 * np.sqrt(np.maximum(centre - spread, 0))


class RemoveSmall:
    """Remove connected parts of the mask with fewer than ``min_size`` pixels.

    Parameters
    ----------
    min_size : int, default 3
    """

    def __init__(self, min_size: int = 3):
        check_range("min_size", min_size, 1, integer=True)
        self.min_size = min_size

    def __call__(self, state: MaskState) -> MaskState:
        if self.min_size <= 1:
            return state
        kept = morphology.remove_small_objects(state.mask, max_size=self.min_size - 1, connectivity=2)
        return replace(state, mask=kept)


class NoiseAsPlayers:
    """Keep only noise pixels (label -1) as candidates.

    Density clustering of CNN features puts the pitch, stands and boards in
    large dense clusters; small, rare structures such as players fall below
    the density threshold and come out as noise. An image without noise gets
    an empty mask.
    """

    def __call__(self, state: MaskState) -> MaskState:
        return replace(state, mask=state.mask & (state.labels < 0))


class MergeSimilarRegions:
    """Merge touching regions whose mean CIELAB colours differ by less than ``threshold``.

    Regions are the 4-connected parts of each cluster; scikit-image's region
    adjacency graph (``rag_mean_color``) links touching regions, and
    ``cut_threshold`` merges those joined by an edge lighter than
    ``threshold``. Noise pixels stay noise. The new label map replaces the
    clusters for the steps that follow. Cost: about 0.4 s for a 240x135 frame.

    Parameters
    ----------
    threshold : float, default 8.0
        Delta E 1976 below which neighbours merge.
    """

    def __init__(self, threshold: float = 8.0):
        check_range("threshold", threshold, 0, low_open=True)
        self.threshold = threshold

    def __call__(self, state: MaskState) -> MaskState:
        regions = measure.label(state.labels + 1, background=0, connectivity=1)
        if regions.max() < 2:
            # nothing to merge; and a graph of one region has no edge, so scikit-image would know no node
            return state
        rag = graph.rag_mean_color(color.rgb2lab(state.image), regions)
        if rag.has_node(0):
            rag.remove_node(0)
        merged = graph.cut_threshold(regions, rag, self.threshold).astype(np.int64)
        merged[state.labels < 0] = -1
        return replace(state, labels=merged)


class CloseMask:
    """Morphological closing of the mask with a disk, joining a player's parts split by a thin gap.

    Parameters
    ----------
    radius : int, default 1
    """

    def __init__(self, radius: int = 1):
        check_range("radius", radius, 1, integer=True)
        self.radius = radius

    def __call__(self, state: MaskState) -> MaskState:
        return replace(state, mask=morphology.closing(state.mask, morphology.disk(self.radius)).astype(bool))


class FillHoles:
    """Fill holes of the mask up to ``max_size`` pixels (a shirt number, a shadowed patch).

    Parameters
    ----------
    max_size : int, default 16
    """

    def __init__(self, max_size: int = 16):
        check_range("max_size", max_size, 1, integer=True)
        self.max_size = max_size

    def __call__(self, state: MaskState) -> MaskState:
        return replace(state, mask=morphology.remove_small_holes(state.mask, max_size=self.max_size))


class ReclusterCandidates:
    """Cluster the candidate pixels again by colour and drop the clusters that look like the field.

    A second, finer pass over what the first pass kept (the method's "repeat
    the clustering and filtering"): k-means on the CIELAB colour of the
    candidates, then every cluster whose mean lies within ``max_distance`` of
    the field's mean colour is removed. The field is the state's field mask
    when a step found one, else every non-candidate pixel. As for
    ``FieldClusters``, the radius is at most ``chroma_limit`` times the
    field's own chroma, so a washed-out picture keeps its players.

    Parameters
    ----------
    n_clusters : int, default 4
    max_distance : float, default 20.0
        Delta E 1976.
    chroma_limit : float or None, default 1.0, > 0
        Cap on the radius, as a multiple of the field's chroma; None: no cap.
    pixels : {"candidates", "noise"}, default "candidates"
        Which candidates are clustered again: all, or only the noise (label
        -1) of a density clusterer. Noise mixes players with stray pitch
        pixels, so it needs this second look; with "noise" a label map
        without noise passes unchanged.
    seed : int, default 0
    """

    def __init__(self, n_clusters: int = 4, max_distance: float = 20.0, pixels: str = "candidates", seed: int = 0,
                 chroma_limit: float | None = 1.0):
        check_range("n_clusters", n_clusters, 2, integer=True)
        check_range("max_distance", max_distance, 0, low_open=True)
        if chroma_limit is not None:
            check_range("chroma_limit", chroma_limit, 0, low_open=True)
        self.chroma_limit = chroma_limit
        check_choice("pixels", pixels, {"candidates", "noise"})
        check_seed("seed", seed)
        self.n_clusters = n_clusters
        self.max_distance = max_distance
        self.pixels = pixels
        self.seed = seed

    def __call__(self, state: MaskState) -> MaskState:
        field = state.field if state.field is not None and state.field.any() else ~state.mask
        chosen = state.mask & (state.labels < 0) if self.pixels == "noise" else state.mask
        if chosen.sum() <= self.n_clusters or not field.any():
            return state
        lab = color.rgb2lab(state.image)
        candidates = lab[chosen]
        labels = KMeans(self.n_clusters, n_init=1, random_state=self.seed).fit_predict(candidates)
        means, _ = label_means(candidates, labels)
        pitch = lab[field].mean(axis=0)
        radius = self.max_distance
        if self.chroma_limit is not None:
            radius = min(radius, self.chroma_limit * float(np.hypot(pitch[1], pitch[2])))
        field_like = np.linalg.norm(means - pitch, axis=1) < radius
        mask = state.mask.copy()
        mask[chosen] = ~field_like[labels]
        return replace(state, mask=mask)
