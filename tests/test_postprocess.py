from dataclasses import replace

import numpy as np
import pytest
from skimage import color

from src.errors import LabError
from src.postprocess import (
    BlendedEdges,
    CloseMask,
    DropLargeClusters,
    EnclosedByField,
    FieldClusters,
    FillHoles,
    MaskState,
    MergeSimilarRegions,
    NoiseAsPlayers,
    PlayerMask,
    PostprocessChain,
    ReclusterCandidates,
    RemoveFlat,
    RemoveGraphics,
    RemoveLines,
    RemoveSmall,
    RemoveThin,
    StandingOnPitch,
    connected_components,
    majority,
    paired_legs,
    pitch_area,
)

GREEN, RED, WHITE, GREY = (40, 130, 40), (200, 30, 30), (240, 240, 240), (120, 110, 130)


def scene():
    """20x30 pitch: stands on the top rows, a 1-px line, a 4x3 player inside and one cut by the bottom."""
    image = np.zeros((20, 30, 3), np.uint8)
    labels = np.zeros((20, 30), int)
    image[:] = GREEN
    image[:4], labels[:4] = GREY, 1                 # stands along the top border
    image[10, 2:28], labels[10, 2:28] = WHITE, 2    # a pitch line
    image[5:9, 5:8], labels[5:9, 5:8] = RED, 3      # a player inside the field
    image[17:, 20:23], labels[17:, 20:23] = RED, 3  # a player cut by the bottom border
    truth = np.zeros((20, 30), bool)
    truth[5:9, 5:8] = True
    truth[17:, 20:23] = True
    return image, labels, truth


def chain(**steps):
    default = {"field": FieldClusters(25.0), "enclosed": EnclosedByField(0.5), "thin": RemoveThin(2),
               "small": RemoveSmall(3)}
    default.update(steps)
    return PostprocessChain(default)


def test_players_kept_stands_and_line_dropped():
    image, labels, truth = scene()
    result = chain()(labels, image)
    assert np.array_equal(result.mask, truth)
    assert result.n_components == 2
    assert np.allclose(sorted(map(tuple, result.centroids)), [(6.5, 6.0), (18.0, 21.0)])


def test_line_stays_without_thin_step():
    image, labels, truth = scene()
    result = chain(thin=None)(labels, image)
    assert result.mask[10, 2:28].all()


def test_player_at_a_border_the_field_does_not_dominate_is_dropped():
    image, labels, truth = scene()
    result = chain(enclosed=EnclosedByField(border_fraction=1.0))(labels, image)
    assert not result.mask[17:, 20:23].any() and result.mask[5:9, 5:8].all()


@pytest.mark.parametrize("bars", [False, True])
def test_steps_read_the_cielab_the_features_converted_unless_the_picture_is_cut(monkeypatch, bars):
    from src import cielab as cielab_module

    image, labels, _ = scene()
    if bars:
        image[:, :3], labels[:, :3] = 0, 4
    image.flags.writeable = False
    cielab_module.cielab(image)
    calls, convert = [], color.xyz2lab
    monkeypatch.setattr(cielab_module.color, "xyz2lab", lambda xyz: calls.append(xyz.shape) or convert(xyz))
    chain(edges=BlendedEdges())(labels, image)
    pictures = [shape for shape in calls if shape[0] > 1]  # (1, K, 3): cluster colours, converted per step
    assert pictures == ([(20, 27, 3)] if bars else [])


def test_inputs_are_not_mutated():
    image, labels, _ = scene()
    before = labels.copy(), image.copy()
    chain()(labels, image)
    assert np.array_equal(labels, before[0]) and np.array_equal(image, before[1])


def test_degenerate_labellings_give_an_empty_mask():
    image, _, _ = scene()
    result = chain()(-np.ones((20, 30), int), image)
    assert not result.mask.any() and result.n_components == 0 and result.centroids.shape == (0, 2)


def test_a_frame_all_pitch_gives_an_empty_mask():
    rng = np.random.default_rng(0)
    image = np.clip(np.array(GREEN) + rng.normal(0, 4, (20, 30, 3)), 0, 255).astype(np.uint8)
    result = chain()(np.zeros((20, 30), int), image)
    assert not result.mask.any() and result.n_components == 0


def test_players_a_field_cluster_took_in_stay_candidates_by_their_own_colour():
    image, labels, truth = scene()
    labels = np.where(labels == 3, 0, labels)  # the clustering gave both players to the grass
    assert np.array_equal(chain()(labels, image).mask, truth)
    assert not chain(field=FieldClusters(25.0, pixel_radius=None))(labels, image).mask.any()


def test_drop_large_clusters_keeps_small_ones():
    image, labels, _ = scene()
    state = MaskState(labels=labels, image=image, mask=np.ones(labels.shape, bool))
    out = DropLargeClusters(max_fraction=0.1)(state)
    assert not out.mask[labels == 0].any() and not out.mask[labels == 1].any()
    assert out.mask[labels == 2].all() and out.mask[labels == 3].all()


def test_remove_small_counts_diagonal_neighbours():
    mask = np.zeros((5, 5), bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True    # 3 pixels, 8-connected
    mask[4, 4] = True
    out = RemoveSmall(3)(MaskState(labels=np.zeros((5, 5), int), image=np.zeros((5, 5, 3), np.uint8), mask=mask))
    assert out.mask.sum() == 3 and not out.mask[4, 4]


def test_enclosed_needs_field_first():
    image, labels, _ = scene()
    with pytest.raises(LabError, match="put the 'field' step before it"):
        PostprocessChain({"enclosed": EnclosedByField()})(labels, image)


def _shaded(rgb, light: float) -> tuple:
    """An sRGB colour at ``light`` of its linear light."""
    return tuple(int(round(255 * (light * (c / 255) ** 2.2) ** (1 / 2.2))) for c in rgb)


@pytest.mark.parametrize("kit, kept", [((20, 20, 24), True), ((180, 30, 40), True),
                                       (_shaded((60, 120, 50), 0.9), False)])
def test_pitch_in_a_shadow_is_pitch_and_dark_kits_in_it_are_not(kit, kept):
    grass = (60, 120, 50)
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30], image[:, 30:] = grass, _shaded(grass, 0.3)  # the right half lies in the stand's shadow
    image[15:25, 40:44] = kit  # a player in the shade
    labels = np.zeros((40, 60), np.int64)
    labels[:, 30:], labels[15:25, 40:44] = 1, 2
    state = MaskState(labels=labels, image=image, mask=np.ones(labels.shape, bool))
    field = FieldClusters(20.0)(state).field
    assert field[:, :30].all() and field[:, 30:40].all()
    assert field[15:25, 40:44].any() != kept
    lit_only = FieldClusters(20.0, shade=None)(state).field
    assert not lit_only[:, 30:40].any()


@pytest.mark.parametrize("lit_min_area, kit_is_pitch", [(0.02, False), (0.0, True)])
def test_brighter_pitch_must_be_wide_so_a_yellow_green_kit_is_no_sunlit_grass(lit_min_area, kit_is_pitch):
    grass = (40, 90, 30)
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :40], image[:, 40:] = grass, _shaded(grass, 3.0)  # the right third in the sun
    image[10:20, 10:14] = _shaded(grass, 3.5)  # a fluorescent kit: sunlit grass's colour, a player's size
    labels = np.zeros((40, 60), np.int64)
    labels[:, 40:], labels[10:20, 10:14] = 1, 1
    state = MaskState(labels=labels, image=image, mask=np.ones(labels.shape, bool))
    out = FieldClusters(20.0, lit_min_area=lit_min_area)(state)
    assert out.field[:, :10].all() and out.field[:, 40:].all()
    assert out.field[10:20, 10:14].all() == kit_is_pitch
    assert out.mask[10:20, 10:14].all() != kit_is_pitch


def test_a_small_darker_patch_of_grass_stays_pitch():
    """A player's shadow on sunlit grass is small and still pitch: only brighter parts must be wide."""
    grass = (60, 120, 50)
    image = np.zeros((40, 60, 3), np.uint8)
    image[:] = grass
    image[20:24, 10:20] = _shaded(grass, 0.4)
    labels = np.zeros((40, 60), np.int64)
    labels[20:24, 10:20] = 1
    state = MaskState(labels=labels, image=image, mask=np.ones(labels.shape, bool))
    assert FieldClusters(20.0, lit_min_area=0.5)(state).field.all()


def pitch_and_crowd_in_one_cluster():
    """20x30: a crowd (rows 0-6) and a striped pitch in cluster 0, as a clustering of CNN features can join them,
    and a red player (cluster 1) on the pitch."""
    image = np.zeros((20, 30, 3), np.uint8)
    image[:] = GREEN
    image[8:, ::4] = (55, 150, 50)                  # mowing stripes
    image[:7] = GREY
    labels = np.zeros((20, 30), int)
    image[12:16, 10:13], labels[12:16, 10:13] = RED, 1
    pitch = np.zeros((20, 30), bool)
    pitch[7:] = True
    pitch[12:16, 10:13] = False
    return image, labels, pitch


def test_cluster_modes_move_to_the_colour_of_a_clusters_larger_part():
    from src.cielab import cielab
    from src.postprocess.steps import cluster_mean_colors, cluster_modes

    image, labels, pitch = pitch_and_crowd_in_one_cluster()
    labels[0, 0] = -1                               # noise is left out
    means, _ = cluster_mean_colors(labels, image)
    lab = cielab(image)
    before = means.copy()
    modes = cluster_modes(labels, lab, means, 25.0)
    assert np.array_equal(means, before)
    grass = lab[pitch].mean(axis=0)
    assert np.linalg.norm(modes[0] - grass) < 0.5 < np.linalg.norm(means[0] - grass) - 10
    assert np.allclose(modes[1], means[1], atol=1e-4)   # the player's cluster is one colour already
    assert np.array_equal(cluster_modes(labels, lab, means, 25.0, steps=0), means)
    assert np.array_equal(cluster_modes(labels, lab, means, 1e-3)[0], means[0])   # no pixel near: the mean stays
    assert np.array_equal(cluster_modes(labels, lab, means + 50, 1.0), means + 50)
    assert np.array_equal(cluster_modes(np.full_like(labels, -1), lab, means, 25.0), means)


def test_field_judges_a_cluster_of_pitch_and_crowd_by_its_grass():
    image, labels, pitch = pitch_and_crowd_in_one_cluster()
    state = FieldClusters()(MaskState(labels=labels, image=image, mask=np.ones(labels.shape, bool)))
    assert state.field[pitch].all() and not state.field[:7].any()
    assert state.mask[12:16, 10:13].all()


def _lab_image(colours: dict, shape=(40, 60)) -> tuple[np.ndarray, np.ndarray]:
    """An sRGB image and label map: the left part ``colours[0]`` (CIELAB), a 10 x 4 player of ``colours[1]``."""
    lab = np.empty((*shape, 3))
    lab[:] = colours[0]
    lab[15:25, 40:44] = colours[1]
    labels = np.zeros(shape, np.int64)
    labels[15:25, 40:44] = 1
    return (color.lab2rgb(lab) * 255 + 0.5).astype(np.uint8), labels


@pytest.mark.parametrize("grass, kit, kept_fixed", [
    ((53, -7, 10), (40, 2, 0), False),    # washed out: pitch chroma 12, the kit 19 away
    ((45, -35, 30), (40, -16, 23), True),  # full colour: the cap (chroma 46) leaves the radius at 20
])
def test_field_radius_is_capped_by_the_pitch_chroma(grass, kit, kept_fixed):
    image, labels = _lab_image({0: grass, 1: kit})
    state = MaskState(labels=labels, image=image, mask=np.ones(labels.shape, bool))
    capped = FieldClusters(20.0, shade=None)(state)
    fixed = FieldClusters(20.0, shade=None, chroma_limit=None)(state)
    assert capped.field[0, 0] and fixed.field[0, 0]
    assert capped.mask[15:25, 40:44].all()
    assert fixed.mask[15:25, 40:44].all() == kept_fixed


def test_washed_out_frame_keeps_its_pitch_green_seed():
    # grey boards and crowd within 20 of each other outweigh the pale pitch for a fixed radius
    shape = (40, 60)
    lab = np.empty((*shape, 3))
    lab[:16], lab[16:] = (39, 1, -2), (53, -7, 10)
    lab[:8, :30], lab[:8, 30:] = (30, 2, -5), (46, 2, 2)
    labels = np.zeros(shape, np.int64)
    labels[:16], labels[:8, :30], labels[:8, 30:] = 1, 2, 3
    image = (color.lab2rgb(lab) * 255 + 0.5).astype(np.uint8)
    state = MaskState(labels=labels, image=image, mask=np.ones(shape, bool))
    fixed = FieldClusters(20.0, shade=None, chroma_limit=None)(state)
    assert fixed.reasons == {"no_field"}
    capped = FieldClusters(20.0, shade=None)(state)
    assert not capped.reasons and capped.field[16:].all() and not capped.field[:16].any()


@pytest.mark.parametrize("make, match", [
    (lambda: FieldClusters(0), r"max_distance=0 is out of range"),
    (lambda: FieldClusters(shade=0.0), r"shade=0.0 is out of range"),
    (lambda: FieldClusters(chroma_limit=0), r"chroma_limit=0 is out of range"),
    (lambda: FieldClusters(pixel_radius=0), r"pixel_radius=0 is out of range"),
    (lambda: FieldClusters(lit_min_area=1.5), r"lit_min_area=1.5 is out of range"),
    (lambda: ReclusterCandidates(chroma_limit=-1.0), r"chroma_limit=-1.0 is out of range"),
    (lambda: EnclosedByField(1.5), r"border_fraction=1.5 is out of range"),
    (lambda: RemoveThin(0), r"width=0 is out of range"),
    (lambda: RemoveSmall(0), r"min_size=0 is out of range"),
    (lambda: PostprocessChain({}, connectivity=3), r"connectivity=3 is not allowed"),
    # true == 1 in Python, and false once slipped through as a step that failed on the first frame
    (lambda: PostprocessChain({}, connectivity=True), r"^connectivity=True is not allowed; choose one of \[1, 2\]$"),
    (lambda: PostprocessChain({"thin": False}), r"^steps.thin=False is not a step; switch it off with null$"),
    (lambda: ReclusterCandidates(seed=-1), r"^seed=-1 is out of range"),
    (lambda: FieldClusters(max_distance=float("inf")), r"^max_distance=inf is not finite"),
])
def test_bad_parameters(make, match):
    with pytest.raises(LabError, match=match):
        make()


def test_connected_components_connectivity():
    mask = np.eye(3, dtype=bool)
    assert connected_components(mask, 2)[1].shape == (1, 2)
    assert connected_components(mask, 1)[1].shape == (3, 2)


def test_noise_as_players_keeps_only_noise():
    image, labels, truth = scene()
    noisy = np.where(truth, -1, labels)
    result = PostprocessChain({"field": FieldClusters(25.0), "noise": NoiseAsPlayers()})(noisy, image)
    assert np.array_equal(result.mask, truth)
    assert not PostprocessChain({"noise": NoiseAsPlayers()})(labels, image).mask.any()


def test_merge_similar_regions_joins_touching_same_colour_clusters_only():
    image, labels, _ = scene()
    split = labels.copy()
    split[:, 15:][labels[:, 15:] == 0] = 7  # the pitch cut into two clusters of one colour
    state = MaskState(labels=split, image=image, mask=np.ones(labels.shape, bool))
    merged = MergeSimilarRegions(8.0)(state).labels
    assert merged[12, 2] == merged[12, 25]            # the two pitch halves are one region again
    assert merged[6, 6] != merged[12, 2]               # the player is not pitch
    assert merged[6, 6] != merged[1, 1]                # nor stands
    assert np.array_equal(split, state.labels)          # input untouched


def test_merge_keeps_noise():
    image, labels, truth = scene()
    noisy = np.where(truth, -1, labels)
    state = MaskState(labels=noisy, image=image, mask=np.ones(labels.shape, bool))
    assert np.array_equal(MergeSimilarRegions(8.0)(state).labels < 0, truth)


@pytest.mark.parametrize("fill", [-1, 0])
def test_merge_of_one_region_or_all_noise_keeps_the_labels(fill):
    image, _, _ = scene()
    labels = np.full(image.shape[:2], fill)
    state = MaskState(labels=labels, image=image, mask=np.ones(labels.shape, bool))
    assert np.array_equal(MergeSimilarRegions(8.0)(state).labels, labels)


def test_close_joins_a_one_pixel_gap():
    mask = np.zeros((12, 12), bool)
    mask[2:10, 2:10] = True
    mask[2:10, 6] = False
    state = MaskState(labels=np.zeros((12, 12), int), image=np.zeros((12, 12, 3), np.uint8), mask=mask)
    closed = CloseMask(1)(state).mask
    assert closed[3:9, 6].all() and not closed[0].any()


@pytest.mark.parametrize("hole, max_size, filled", [(1, 4, True), (3, 4, False), (3, 9, True)])
def test_fill_holes_up_to_max_size(hole, max_size, filled):
    mask = np.ones((9, 9), bool)
    mask[3:3 + hole, 3:3 + hole] = False
    state = MaskState(labels=np.zeros((9, 9), int), image=np.zeros((9, 9, 3), np.uint8), mask=mask)
    assert FillHoles(max_size)(state).mask.all() == filled


@pytest.mark.parametrize("thickness", [1, 3, 5])
def test_remove_lines_drops_long_bands_at_any_thickness_and_keeps_players(thickness):
    mask = np.zeros((80, 120), bool)
    rows = np.arange(10, 70)
    for t in range(thickness):                        # a diagonal pitch line, 60 px long
        mask[rows, rows + 30 + t] = True
    player = np.zeros_like(mask)
    player[40:70, 5:13] = True                        # 30 x 8: upright, elongation about 4
    player[44:47, 13:20] = True                       # with an arm out
    state = MaskState(labels=np.zeros(mask.shape, int), image=np.zeros((80, 120, 3), np.uint8), mask=mask | player)
    assert np.array_equal(RemoveLines(10.0)(state).mask, player)
    assert RemoveLines(1000.0)(state).mask[mask].all()


def test_remove_lines_keeps_a_player_the_frame_edge_cuts():
    mask = np.zeros((80, 120), bool)
    mask[30:58, 118:] = True                          # 28 x 2 sliver of a player against the right edge
    mask[60:62, 90:] = True                           # a pitch line running into the same edge
    state = MaskState(labels=np.zeros(mask.shape, int), image=np.zeros((80, 120, 3), np.uint8), mask=mask)
    kept = RemoveLines(10.0)(state).mask
    assert kept[30:58, 118:].all() and not kept[60:62].any()
    inside = replace(state, mask=np.roll(mask, -40, axis=1))        # the same sliver away from the edge
    assert not RemoveLines(10.0)(inside).mask.any()


def test_remove_thin_keeps_a_sliver_the_frame_edge_cuts():
    mask = np.zeros((20, 30), bool)
    mask[5:15, 0] = True                              # one column of a player cut by the left edge
    mask[5:15, 10] = True                             # a one-pixel line inside the frame
    mask[19, 20:25] = True                            # a player's sliver along the bottom edge
    state = MaskState(labels=np.zeros(mask.shape, int), image=np.zeros((20, 30, 3), np.uint8), mask=mask)
    kept = RemoveThin(2)(state).mask
    assert kept[5:15, 0].all() and kept[19, 20:25].all() and not kept[:, 10].any()


def test_recluster_drops_field_coloured_candidates():
    image, labels, truth = scene()
    candidates = truth.copy()
    candidates[12:14, 10:20] = True  # a patch of pitch that the first pass wrongly kept
    state = MaskState(labels=labels, image=image, mask=candidates, field=(labels == 0) & ~candidates)
    out = ReclusterCandidates(n_clusters=2, max_distance=20.0, seed=0)(state).mask
    assert np.array_equal(out, truth)


def test_recluster_radius_is_capped_by_the_field_chroma():
    image, labels = _lab_image({0: (53, -7, 10), 1: (40, 2, 0)})  # washed out: pitch chroma 12, the kit 19 away
    candidates = labels == 1
    candidates[5:7, 5:15] = True  # a patch of pitch that the first pass kept
    state = MaskState(labels=labels, image=image, mask=candidates, field=~candidates)
    capped = ReclusterCandidates(n_clusters=2, max_distance=20.0, seed=0)(state).mask
    fixed = ReclusterCandidates(n_clusters=2, max_distance=20.0, seed=0, chroma_limit=None)(state).mask
    assert np.array_equal(capped, labels == 1) and not fixed.any()


def test_recluster_of_noise_touches_only_noise_pixels():
    image, labels, truth = scene()
    candidates = truth.copy()
    candidates[12:14, 10:20] = True       # pitch pixels among the candidates ...
    noisy = labels.copy()
    noisy[12:14, 10:20] = -1              # ... that a density clusterer left as noise
    noisy[5:9, 5:8] = -1                  # one player is noise too, the other a cluster
    state = MaskState(labels=noisy, image=image, mask=candidates, field=(labels == 0) & ~candidates)
    out = ReclusterCandidates(n_clusters=2, max_distance=20.0, pixels="noise", seed=0)(state).mask
    assert np.array_equal(out, truth)
    without_noise = MaskState(labels=labels, image=image, mask=candidates, field=state.field)
    assert ReclusterCandidates(n_clusters=2, pixels="noise")(without_noise) is without_noise


@pytest.mark.parametrize("step, message", [
    (lambda: ReclusterCandidates(pixels="all"), r"pixels='all' is not allowed"),
    (lambda: MergeSimilarRegions(0), r"threshold=0"),
    (lambda: CloseMask(0), r"radius=0"),
    (lambda: FillHoles(0), r"max_size=0"),
    (lambda: RemoveLines(1), r"max_elongation=1 is out of range"),
    (lambda: ReclusterCandidates(n_clusters=1), r"n_clusters=1"),
    (lambda: RemoveGraphics(fill=0), r"fill=0 is out of range"),
    (lambda: RemoveGraphics(aspect=0), r"aspect=0 is out of range"),
    (lambda: RemoveGraphics(share=1.5), r"share=1.5 is out of range"),
    (lambda: RemoveGraphics(min_area=-0.1), r"min_area=-0.1 is out of range"),
    (lambda: RemoveGraphics(edge=2), r"edge=2 is out of range"),
    (lambda: RemoveFlat(aspect=0.5), r"aspect=0.5 is out of range"),
    (lambda: RemoveFlat(width=0), r"width=0 is out of range"),
    (lambda: RemoveFlat(below=-1), r"below=-1 is out of range"),
])
def test_new_steps_reject_bad_values(step, message):
    with pytest.raises(LabError, match=message):
        step()


def boards_scene():
    """30x40: crowd (rows 0-7), boards (8-11), pitch below; players crossing the boards, one cut by the edge."""
    labels = np.zeros((30, 40), int)
    labels[:8] = 1                                   # crowd
    labels[8:12] = 2                                 # boards
    labels[8:12, 20:23] = 5                          # a logo on the boards, upright and resting on the pitch
    for cols in (slice(10, 13), slice(37, 40)):      # a player mid-frame, one cut by the right frame edge
        labels[6:13, cols] = 3                       # shirt and head in front of the boards and crowd
        labels[13:18, cols] = 4                      # shorts and legs on the pitch
    labels[22:26, 25:27] = 3                         # a player the pitch encloses
    players = np.isin(labels, (3, 4))
    labels[12:15, 26:35] = 6                         # a goal's crossbar and net below the boards: wide
    labels[12, 13:18] = 7                            # the boards' lower edge under the line, touching a player
    image = np.zeros((30, 40, 3), np.uint8)
    return MaskState(labels=labels, image=image, mask=labels != 0, field=labels == 0), players


def test_standing_keeps_players_in_front_of_the_boards_and_drops_the_boards():
    state, players = boards_scene()
    kept = StandingOnPitch()(state).mask
    assert np.array_equal(kept, players)
    # enclosure alone keeps only the player the pitch surrounds
    enclosed = EnclosedByField(0.5)(state).mask
    assert enclosed[22:26, 25:27].all() and not enclosed[6:18, 10:13].any() and not enclosed[:, 37:].any()


def test_standing_joins_only_what_keeps_a_player_upright():
    state, players = boards_scene()
    short = StandingOnPitch(tall=1.0)(state).mask
    assert short[12:18, 10:13].all() and not short[6:12, 10:13].any()   # the legs stay, the shirt may not join
    wide = StandingOnPitch(wide=3.0)(state).mask
    assert wide[12:15, 26:35].all()                                       # the crossbar passes only if wide
    narrow = StandingOnPitch(span=0.0, wide=0.2)(state).mask
    assert not narrow[6:18, 10:13].any() and narrow[22:26, 25:27].all()  # enclosed players never depend on it


def test_standing_needs_feet_on_the_pitch():
    state, _ = boards_scene()
    labels = state.labels.copy()
    labels[18, 10:13] = 8                                 # under the player's feet: no pitch, no candidate
    floating = replace(state, labels=labels, mask=~np.isin(labels, (0, 8)), field=labels == 0)
    assert not StandingOnPitch(contact=0.5)(floating).mask[6:18, 10:13].any()
    assert StandingOnPitch(contact=0.0)(floating).mask[6:18, 10:13].all()


def closeup_scene(top: int = 0):
    """20x48 close-up on the pitch: a group of three players from row ``top``, cut by the frame's foot with pitch
    on both sides, wider than high; a board's corner cut by the foot and the right edge."""
    labels = np.zeros((20, 48), int)
    labels[top:, 4:13] = labels[3:, 13:24] = labels[top:, 24:33] = 3
    labels[12:, 40:] = 2
    players = labels == 3
    return MaskState(labels=labels, image=np.zeros((20, 48, 3), np.uint8), mask=labels != 0, field=labels == 0), players


def test_standing_keeps_a_group_the_frame_cuts_at_the_top_and_foot():
    state, players = closeup_scene()
    assert not EnclosedByField(0.5)(state).mask.any()   # the foot of the frame is mostly player: no enclosure
    assert np.array_equal(StandingOnPitch()(state).mask, players)


def test_a_wide_group_inside_the_frame_is_no_player_and_a_corner_has_no_pitch_beyond_it():
    state, players = closeup_scene(top=2)
    assert not StandingOnPitch()(state).mask.any()
    assert np.array_equal(StandingOnPitch(wide=2.0)(state).mask, players)   # the corner stays out at any width


def test_paired_legs_keeps_thin_legs_side_by_side_and_drops_a_lone_stroke():
    below = np.zeros((12, 30), bool)
    below[2:8, 3] = below[2:8, 6] = True             # two legs one pixel wide, three columns apart
    below[2:8, 15] = True                            # a goalpost: one stroke, nothing beside it
    below[2:8, 22:24] = True                         # a part two pixels wide
    below[10, 0:30] = True                           # a line one pixel high
    kept = paired_legs(below)
    expected = np.zeros_like(below)
    expected[2:8, 3] = expected[2:8, 6] = expected[2:8, 22:24] = True
    assert np.array_equal(kept, expected)
    wide_only = np.zeros_like(below)
    wide_only[2:8, 22:24] = True
    assert np.array_equal(paired_legs(below, pair=0.0), wide_only)
    assert not paired_legs(below, pair=0.3)[2:8, 3].any()   # 3 columns apart is beyond 0.3 x 6 rows
    assert np.array_equal(below, paired_legs(below) | below)  # the input is left alone


def test_standing_keeps_a_far_player_on_thin_legs():
    state, players = boards_scene()
    labels = state.labels.copy()
    labels[13:18, 10:13] = 0
    labels[13:18, 10] = labels[13:18, 12] = 4        # his legs, one pixel wide each
    state = replace(state, labels=labels, mask=labels != 0, field=labels == 0)
    kept = StandingOnPitch()(state).mask
    assert kept[6:12, 10:13].all() and kept[12:18, 10].all() and kept[12:18, 12].all()
    assert not StandingOnPitch(pair=0.0)(state).mask[6:18, 10:13].any()


def test_pitch_area_bridges_players_and_gaps_narrower_than_the_window():
    field = np.zeros((20, 60), bool)
    field[8:] = True
    field[8:15, 20:24] = False                            # a player at the touchline hides the line
    field[3:8, 40:43] = True                              # grass seen through a gap in the boards
    area = pitch_area(field, window=0.25)
    assert np.array_equal(area, np.broadcast_to(np.arange(20)[:, None] >= 8, field.shape))
    assert not pitch_area(np.zeros((5, 5), bool)).any()
    assert pitch_area(np.ones((5, 5), bool)).all()


def test_pitch_area_follows_the_line_into_the_frame_edge():
    field = np.zeros((60, 100), bool)
    top = np.r_[np.full(70, 20), 20 + np.arange(1, 31)]   # the boards slope down into the right edge
    field[np.arange(60)[:, None] >= top[None, :]] = True
    area = pitch_area(field, window=0.25)
    assert np.array_equal(area.argmax(axis=0), top)


@pytest.mark.parametrize("n", [2, 3, 8, 61])
@pytest.mark.parametrize("seed", range(3))
def test_theil_sen_line_equals_scipys(n, seed):
    from scipy import stats

    from src.postprocess.standing import theil_sen
    values = np.random.default_rng(seed).integers(0, 135, n).astype(float)
    values[: n // 3] += 40                          # a dip: the median slope must not follow it
    expected = stats.theilslopes(values, np.arange(n, dtype=float))
    assert theil_sen(values) == (expected.slope, expected.intercept)
    # repeated and unordered positions, as the foot rows of parts: pairs on one row have no slope
    positions = np.random.default_rng(seed + 10).integers(0, max(2, n // 2), n)
    positions[:2] = [0, 1]
    expected = stats.theilslopes(values, positions)
    assert theil_sen(values, positions) == (expected.slope, expected.intercept)


def board_edge_scene():
    """100x200: crowd, boards to row 44, pitch below; the boards' edge shows in rows 45-46 of cols 80-120,
    and a player in front of the boards stands on the pitch with his legs through it."""
    labels = np.zeros((100, 200), int)
    labels[:30] = 1                                  # crowd
    labels[30:45] = 2                                # boards
    labels[45:47, 80:120] = 7                        # the boards' lower edge, narrower than the window
    labels[25:45, 98:106] = 3                        # shirt and head in front of the boards
    labels[45:55, 100:104] = 4                       # legs on the pitch, through the edge
    players = np.isin(labels, (3, 4))
    return MaskState(labels=labels, image=np.zeros((100, 200, 3), np.uint8), mask=labels != 0,
                     field=labels == 0), players


def test_standing_drops_the_boards_edge_under_a_players_feet():
    state, players = board_edge_scene()
    assert np.array_equal(StandingOnPitch()(state).mask, players)
    # with the edge kept, he is as wide as the boards' edge and dropped with it
    assert not StandingOnPitch(strip=0.0)(state).mask.any()


def lettered_boards_scene(shirt: slice):
    """60x200: crowd, boards (rows 20-29) whose letters repeat every 12 columns, pitch from row 30; a player
    with his legs on the pitch (cols 58-61) and his shirt (rows 16-29, ``shirt`` cols) in front of the boards."""
    labels = np.zeros((60, 200), int)
    labels[:20] = 1                                  # crowd
    labels[20:30] = 2                                # boards
    for start in range(5, 200, 12):
        labels[22:28, start:start + 3] = 5           # lettering, one colour all along the boards
    labels[16:30, shirt] = 3
    labels[30:42, 58:62] = 4
    return MaskState(labels=labels, image=np.zeros((60, 200, 3), np.uint8), mask=labels != 0,
                     field=labels == 0), np.isin(labels, (3, 4))


def test_standing_joins_a_shirt_wider_than_the_feet_below_it():
    state, player = lettered_boards_scene(slice(49, 65))     # an arm out to one side, beyond an arm's reach
    assert np.array_equal(StandingOnPitch()(state).mask, player)
    strict = StandingOnPitch(recurrence=None)(state).mask
    assert strict[30:42, 58:62].all() and not strict[16:30].any()


def test_standing_leaves_a_board_piece_running_on_beyond_a_players_reach():
    state, player = lettered_boards_scene(slice(54, 65))
    labels = state.labels.copy()
    labels[14:16, 46:74] = 6                        # a piece of board over his head, in no other column
    state = replace(state, labels=labels, mask=labels != 0, field=labels == 0)
    assert np.array_equal(StandingOnPitch()(state).mask, player)
    narrower = labels.copy()
    narrower[14:16, 46:74] = 1
    narrower[14:16, 50:70] = 6                       # no wider than his columns and his reach either side
    state = replace(state, labels=narrower, mask=narrower != 0)
    assert StandingOnPitch()(state).mask[14:16, 50:70].all()


def test_standing_leaves_the_boards_lettering_beside_a_player():
    state, player = lettered_boards_scene(slice(54, 65))     # letters at cols 53-55 and 65-67 touch him
    assert np.array_equal(StandingOnPitch()(state).mask, player)
    without = StandingOnPitch(recurrence=None)(state).mask
    assert without[22:28, 65:68].all() and not without[22:28, 77:80].any()


@pytest.mark.parametrize("kwargs, message", [
    ({"contact": 1.5}, r"contact=1.5 is out of range"),
    ({"window": 0}, r"window=0 is out of range"),
    ({"tall": 0}, r"tall=0 is out of range"),
    ({"span": -1}, r"span=-1 is out of range"),
    ({"rounds": -1}, r"rounds=-1 is out of range"),
    ({"strip": 2}, r"strip=2 is out of range"),
    ({"run": 0}, r"run=0 is out of range"),
    ({"recurrence": -1.0}, r"recurrence=-1.0 is out of range"),
    ({"pair": -0.5}, r"pair=-0.5 is out of range"),
])
def test_standing_rejects_bad_values(kwargs, message):
    with pytest.raises(LabError, match=message):
        StandingOnPitch(**kwargs)


def test_standing_needs_field_first():
    state, _ = boards_scene()
    with pytest.raises(LabError, match="StandingOnPitch needs a field mask; run FieldClusters before it"):
        StandingOnPitch()(replace(state, field=None))
    # in a chain the order is checked when it is built, naming the step
    with pytest.raises(LabError, match=r"^steps.standing needs a field mask; put the 'field' step before it$"):
        PostprocessChain({"standing": StandingOnPitch(), "field": FieldClusters()})
    PostprocessChain({"field": FieldClusters(), "enclosed": EnclosedByField(), "standing": StandingOnPitch()})


def test_a_frame_without_pitch_gives_an_empty_mask_and_says_why():
    crowd = np.zeros((20, 30, 3), np.uint8)
    labels = np.zeros((20, 30), int)
    crowd[:] = (120, 90, 140)                         # a purple crowd shot
    crowd[5:9, 5:8], labels[5:9, 5:8] = RED, 1
    crowd[12:, :], labels[12:, :] = GREY, 2
    player = chain()(labels, crowd)
    assert not player.mask.any() and player.reasons == frozenset({"no_field"})
    # the same frame is read as before when the colour test is off
    relaxed = chain(field=FieldClusters(25.0, max_green_a=None))(labels, crowd)
    assert relaxed.reasons == frozenset()


def test_a_frame_that_is_all_pitch_gives_an_empty_mask_without_a_reason():
    image = np.zeros((20, 30, 3), np.uint8)
    image[:] = GREEN
    player = chain()(np.zeros((20, 30), int), image)
    assert not player.mask.any() and player.reasons == frozenset()


def test_the_players_of_a_scene_with_pitch_have_no_reason():
    image, labels, truth = scene()
    assert chain()(labels, image).reasons == frozenset()


def blended_player(share: float, grass=(40, 130, 40), kit=(200, 30, 30)):
    """A 6x3 kit-coloured player on grass, with a one-pixel column on his right that is ``share`` kit."""
    image = np.zeros((20, 20, 3), np.uint8)
    image[:] = grass
    image[7:13, 8:11] = kit
    image[7:13, 11] = np.round(share * np.array(kit) + (1 - share) * np.array(grass))
    mask = np.zeros((20, 20), bool)
    mask[7:13, 8:11] = True
    labels = mask.astype(int)
    return MaskState(labels=labels, image=image, mask=mask, field=~mask), mask


@pytest.mark.parametrize("share, joins", [(0.8, True), (0.6, True), (0.4, False), (0.0, False)])
def test_outline_pixels_join_the_player_who_covers_most_of_them(share, joins):
    state, mask = blended_player(share)
    out = BlendedEdges(coverage=0.5)(state).mask
    assert out[7:13, 11].all() == joins and out[7:13, 11].any() == joins
    assert np.array_equal(out & ~state.mask, np.zeros_like(mask) if not joins else out & ~mask)
    assert not out[:, 12:].any() and not out[:, :8].any()          # pure grass never joins
    assert np.array_equal(state.mask, mask)                        # the input is not mutated


def test_outline_pixels_are_read_against_their_own_grass():
    """A dark kit's blend with shaded grass: against the sunlit grass beyond the shadow it would pass for kit."""
    state, _ = blended_player(0.3, grass=(20, 65, 20), kit=(20, 20, 24))
    image = state.image.copy()
    image[:, 16:] = image[:, :4] = (60, 170, 60)                   # sunlit grass, outside a 9 x 9 box
    assert not BlendedEdges(radius=4)(replace(state, image=image)).mask[7:13, 11].any()
    assert BlendedEdges(radius=20)(replace(state, image=image)).mask[7:13, 11].all()


def test_outline_pixels_outside_the_field_stay_out():
    state, _ = blended_player(0.9)
    field = state.field.copy()
    field[:, 11] = False                                           # the blend column is advertising, not pitch
    assert not BlendedEdges()(replace(state, field=field)).mask[:, 11].any()


def test_blended_edges_need_the_field_and_check_values():
    image, labels, _ = scene()
    with pytest.raises(LabError, match="put the 'field' step before it"):
        PostprocessChain({"edges": BlendedEdges()})(labels, image)
    for kwargs, message in (({"coverage": 0.0}, r"coverage=0.0 is out of range"),
                            ({"radius": 0}, r"radius=0 is out of range"),
                            ({"rounds": 0}, r"rounds=0 is out of range")):
        with pytest.raises(LabError, match=message):
            BlendedEdges(**kwargs)


@pytest.mark.parametrize("density", [0.1, 0.45, 0.6, 0.9])
@pytest.mark.parametrize("shape", [(40, 70), (1, 6), (5, 1)])
def test_fill_holes_equals_scipy(density, shape):
    from scipy import ndimage as ndi

    from src.postprocess.steps import fill_holes
    mask = np.random.default_rng(int(density * 100)).random(shape) < density
    before = mask.copy()
    np.testing.assert_array_equal(fill_holes(mask), ndi.binary_fill_holes(mask))
    np.testing.assert_array_equal(mask, before)


def test_axis_lengths_equal_regionprops():
    from scipy import ndimage as ndi
    from skimage import measure

    from src.postprocess.steps import axis_lengths
    mask = ndi.binary_opening(np.random.default_rng(3).random((60, 90)) < 0.45)
    parts, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    major, minor = axis_lengths(parts, n)
    props = measure.regionprops(parts)
    np.testing.assert_allclose(major, [p.axis_major_length for p in props], atol=1e-9)
    np.testing.assert_allclose(minor, [p.axis_minor_length for p in props], atol=1e-9)


@pytest.mark.parametrize("kind", ["bool", "labels"])
@pytest.mark.parametrize("shape", [(30, 41), (1, 7), (6, 1)])
def test_dilations_equal_scipy(kind, shape):
    from scipy import ndimage as ndi

    from src.neighbours import dilate_cross, dilate_square
    rng = np.random.default_rng(4)
    values = rng.random(shape) < 0.2 if kind == "bool" else rng.integers(0, 9, shape)
    for dilate, footprint in ((dilate_cross, ndi.generate_binary_structure(2, 1)), (dilate_square, np.ones((3, 3)))):
        expected = (ndi.binary_dilation(values, footprint) if kind == "bool"
                    else ndi.grey_dilation(values, footprint=footprint))
        np.testing.assert_array_equal(dilate(values), expected)


@pytest.mark.parametrize("height, width", [(1, 1), (2, 2), (2, 1), (1, 12), (3, 3), (4, 2)])
@pytest.mark.parametrize("shape", [(30, 41), (1, 7), (6, 1), (3, 3)])
def test_rectangle_opening_equals_scipy(height, width, shape):
    from scipy import ndimage as ndi

    from src.neighbours import rectangle_opening
    rng = np.random.default_rng(5)
    mask = rng.random(shape) < 0.6
    mask[: shape[0] // 2] |= rng.random((shape[0] // 2, shape[1])) < 0.9    # rectangles that fit, edges included
    before = mask.copy()
    expected = ndi.binary_opening(mask, np.ones((height, width), bool))
    np.testing.assert_array_equal(rectangle_opening(mask, height, width), expected)
    np.testing.assert_array_equal(mask, before)


def test_outline_neighbour_means_equal_the_box_means_of_radius_one():
    from src.postprocess.edges import _box_means, _neighbour_means
    rng = np.random.default_rng(6)
    values, weight = rng.random((20, 30, 3)) * 100, rng.random((20, 30)) < 0.5
    rows, cols = np.nonzero(rng.random((20, 30)) < 0.3)      # frame borders included
    np.testing.assert_allclose(_neighbour_means(values, weight, rows, cols),
                               _box_means(values, weight, rows, cols, 1)[0], atol=1e-9)


def _player(mask, reasons=()):
    return PlayerMask(mask, *connected_components(mask), reasons=frozenset(reasons))


def test_majority_keeps_the_pixels_and_reasons_most_masks_hold():
    masks = [np.zeros((5, 9), bool) for _ in range(3)]
    masks[0][1:4, 1:3] = masks[1][1:4, 1:3] = True
    masks[1][1:4, 6:8] = masks[2][1:4, 6:8] = True
    masks[2][0, 4] = True
    voted = majority([_player(masks[0], {"no_field"}), _player(masks[1], {"no_field"}), _player(masks[2])])
    np.testing.assert_array_equal(voted.mask, np.sum(masks, axis=0) >= 2)
    assert voted.n_components == 2 and voted.reasons == {"no_field"}
    np.testing.assert_allclose(sorted(map(tuple, voted.centroids)), [(2.0, 1.5), (2.0, 6.5)])
    # two masks tie where one holds a pixel: a tie keeps nothing
    assert not majority([_player(masks[0], {"no_field"}), _player(masks[2])]).mask.any()
    assert not majority([_player(masks[0], {"no_field"}), _player(masks[2])]).reasons


def test_majority_needs_a_mask():
    with pytest.raises(LabError, match="at least one player mask"):
        majority([])
