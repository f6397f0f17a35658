import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from src.data import FootballDataset
from src.data.variants import make_variant
from src.errors import LabError


@pytest.fixture(scope="module")
def source(synthetic_root):
    return FootballDataset(str(synthetic_root), n_images=None, scale=4)


@pytest.mark.parametrize("variant", ["kits", "pitch"])
def test_recoloured_variants_keep_ground_truth_and_change_only_their_part(source, variant, tmp_path):
    out = FootballDataset(str(make_variant(source, variant, tmp_path / variant)), n_images=None, scale=4)
    assert out.image_ids == source.image_ids
    for image_id in source.image_ids[:3]:
        before, after = source.frame(image_id), out.frame(image_id)
        assert np.array_equal(before.mask, after.mask) and before.n_instances == after.n_instances
        changed = np.abs(before.image.astype(int) - after.image.astype(int)).sum(axis=-1) > 30
        players = before.mask
        part, rest = (players, ~players) if variant == "kits" else (~players, players)
        if part.any():
            assert changed[part].mean() > 0.3  # grey and dark parts keep their look under a hue turn
        if rest.any():
            interior = ndi.binary_erosion(rest, iterations=2)  # JPEG bleeds colour across edges
            if interior.any():
                assert changed[interior].mean() < 0.2


def test_shadow_darkens_one_side_of_a_slanted_line_and_keeps_ground_truth(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "shadow", tmp_path / "s", shadow_light=0.25)), n_images=None,
                          scale=4)
    image_id = source.image_ids[0]
    before, after = source.frame(image_id), out.frame(image_id)
    assert np.array_equal(before.mask, after.mask) and before.n_instances == after.n_instances
    height, width = before.image.shape[:2]
    shaded, lit = (slice(0, height // 4), slice(0, width // 4)), (slice(-height // 4, None), slice(-width // 3, None))
    # a quarter of the light is about 0.53 of the sRGB value (gamma 2.2)
    ratio = after.image[shaded].astype(float).mean() / before.image[shaded].astype(float).mean()
    assert ratio == pytest.approx(0.25 ** (1 / 2.2), abs=0.06)
    assert np.abs(after.image[lit].astype(int) - before.image[lit].astype(int)).mean() < 3


def test_washed_shrinks_saturation_and_contrast_and_keeps_ground_truth(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "washed", tmp_path / "w", washed_saturation=0.5,
                                           washed_contrast=0.7)), n_images=None, scale=4)
    image_id = source.image_ids[0]
    before, after = source.frame(image_id), out.frame(image_id)
    assert np.array_equal(before.mask, after.mask) and before.n_instances == after.n_instances
    spread = [np.ptp(f.image.astype(float), axis=-1).mean() for f in (before, after)]  # colourfulness
    assert spread[1] == pytest.approx(0.35 * spread[0], rel=0.2)
    contrast = [f.image.astype(float).mean(axis=-1).std() for f in (before, after)]
    assert contrast[1] == pytest.approx(0.7 * contrast[0], rel=0.1)


@pytest.mark.parametrize("option, value", [("washed_saturation", 0.0), ("washed_contrast", 1.5)])
def test_washed_factors_out_of_range(source, tmp_path, option, value):
    with pytest.raises(LabError, match=f"{option}={value} is out of range"):
        make_variant(source, "washed", tmp_path / "w", **{option: value})


def test_closeup_enlarges_the_largest_player_to_the_asked_fraction(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "closeup", tmp_path / "c", closeup_fraction=0.1)),
                          n_images=None, scale=4)
    with_players = [i for i in source.image_ids if source.coco.getAnnIds(imgIds=[i])]
    assert out.image_ids == with_players
    fractions = [out.full_mask(i).mean() for i in out.image_ids]
    assert all(f >= 0.05 for f in fractions)  # the crop holds the player at about a tenth, plus its neighbours
    frame = out.frame(out.image_ids[0])
    assert frame.image.shape[:2] == source.frame(source.image_ids[0]).image.shape[:2]


def test_far_touchline_is_the_top_edge_of_the_pitch():
    from src.data.variants import far_touchline
    image = np.zeros((200, 320, 3), np.uint8)
    image[:] = (90, 90, 110)                 # crowd and boards
    image[72:] = (40, 130, 40)               # the pitch from row 72 down
    image[120, 20:300] = (240, 240, 240)     # a line on it
    image[90:110, 150:156] = (200, 30, 30)   # a player on it
    assert abs(far_touchline(image) - 72) <= 4


def touchline_scene():
    """200x320: crowd above row 72, pitch below, a player whose head crosses the touchline, one in midfield."""
    image = np.zeros((200, 320, 3), np.uint8)
    image[:] = (90, 90, 110)
    image[72:] = (40, 130, 40)
    mask = np.zeros((200, 320), bool)
    mask[60:100, 150:158] = True
    mask[150:170, 40:46] = True
    image[mask] = (200, 30, 30)
    return image, mask


@pytest.mark.parametrize("factor", [2.0, 4.0])
def test_zooms_anchor_at_the_touchline_and_enlarge_the_player_there(factor):
    from src.data.variants import _enlarged, _enlarged_mask, _zoom
    image, mask = touchline_scene()
    window = _zoom(image, mask, factor)
    big_image, big_mask = _enlarged(image, window), _enlarged_mask(mask, window)
    assert big_image.shape == image.shape and big_mask.shape == mask.shape
    # the player at the touchline is in the zoom, factor^2 as large, with crowd above the pitch behind him
    assert big_mask.sum() == pytest.approx(factor ** 2 * mask[60:100, 150:158].sum(), rel=0.15)
    rows = np.nonzero(big_mask.any(axis=1))[0]
    assert (np.abs(big_image[: rows.min()].astype(int) - (90, 90, 110)).sum(axis=-1) < 30).any()


def test_touchline_frames_are_those_with_a_player_at_the_touchline(source, tmp_path):
    from src.data.variants import reaches_touchline
    image, mask = touchline_scene()
    assert reaches_touchline(image, mask)
    mask[60:100] = False
    assert not reaches_touchline(image, mask)
    # no synthetic player comes near its touchline, so the subset of the fixture is empty
    out = make_variant(source, "touchline", tmp_path / "t")
    assert json.loads((out / "annotations" / "instances_default.json").read_text())["images"] == []


def test_resolution_resizes_frames_and_ground_truth_alike(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "resolution", tmp_path / "r", resolution=(640, 360))),
                          n_images=None, scale="auto")
    image_id = next(i for i in source.image_ids if source.frame(i).mask.any())
    assert out.full_size(image_id) == (640, 360) and out.scale_label == "3"
    with Image.open(out.image_path(image_id)) as image:
        assert image.size == (640, 360)
    # the same picture and players at the same working size as the 1920x1080 source at scale 3 * 3
    before = FootballDataset(str(source.root), n_images=None, scale=9).frame(image_id)
    after = out.frame(image_id)
    assert after.image.shape == before.image.shape == (120, 213, 3)
    assert np.abs(after.image.astype(int) - before.image.astype(int)).mean() < 6
    assert (after.mask != before.mask).mean() < 0.01 and after.mask.sum() > 0.8 * before.mask.sum()


@pytest.mark.parametrize("resolution", [(0, 360), (640.5, 360)])
def test_resolution_sides_are_whole_and_positive(source, tmp_path, resolution):
    with pytest.raises(LabError, match=r"resolution=.* (is out of range|must be an integer)"):
        make_variant(source, "resolution", tmp_path / "r", resolution=resolution)


def test_edge_crops_cut_a_player_at_the_frame_border(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "edge", tmp_path / "edge")), n_images=None, scale=4)
    cut = [out.full_mask(i)[:, [0, -1]].any() for i in out.image_ids]
    assert np.mean(cut) >= 0.8


def test_foot_crops_cut_a_player_at_the_frame_foot(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "foot", tmp_path / "foot")), n_images=None, scale=4)
    cut = [out.full_mask(i)[-1].any() for i in out.image_ids]
    assert np.mean(cut) >= 0.8


def test_cropped_variants_keep_one_annotation_per_player_in_view(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "zoom2", tmp_path / "zoom2")), n_images=None, scale=4)
    counts = [len(out.coco.getAnnIds(imgIds=[i])) for i in out.image_ids]
    assert all(1 <= n <= len(source.coco.getAnnIds(imgIds=[i])) for i, n in zip(out.image_ids, counts))
    assert max(counts) > 1                            # players, not one union per frame
    assert all(a["area"] > 0 for a in out.coco.loadAnns(out.coco.getAnnIds()))


def test_command_line_writes_a_variant_of_the_sampled_frames(synthetic_root, tmp_path, capsys):
    from src.data.variants import main

    out = main(["graphics", str(tmp_path / "g"), "--root", str(synthetic_root), "--n-images", "3", "--seed", "1"])
    assert capsys.readouterr().out.strip() == str(out)
    written = FootballDataset(str(out), n_images=None, scale=4)
    assert written.image_ids == FootballDataset(str(synthetic_root), n_images=3, seed=1).image_ids
    with pytest.raises(SystemExit):
        main(["night", str(tmp_path / "n"), "--root", str(synthetic_root)])


def test_command_line_passes_the_kit_hue_shift(synthetic_root, tmp_path, capsys):
    from src.data.variants import main

    source = FootballDataset(str(synthetic_root), n_images=2, seed=0, scale=4)
    players = {}
    for shift in ("0", "240"):
        out = main(["kits", str(tmp_path / shift), "--root", str(synthetic_root), "--n-images", "2",
                    "--kit-hue-shift", shift])
        frame = FootballDataset(str(out), n_images=None, scale=4).frame(source.image_ids[0])
        players[shift] = frame.image[frame.mask].astype(int)
    before = source.frame(source.image_ids[0])
    kept = np.abs(players["0"] - before.image[before.mask].astype(int)).sum(axis=-1)
    turned = np.abs(players["240"] - before.image[before.mask].astype(int)).sum(axis=-1)
    assert np.median(kept) < 30 < np.median(turned)


@pytest.mark.parametrize("brightness", ["0.5", "1.0"])
def test_command_line_passes_the_pitch_settings(synthetic_root, tmp_path, brightness):
    from src.data.variants import main

    source = FootballDataset(str(synthetic_root), n_images=2, seed=0, scale=4)
    out = main(["pitch", str(tmp_path / brightness), "--root", str(synthetic_root), "--n-images", "2",
                "--pitch-hue-shift", "0", "--pitch-brightness", brightness])
    before = source.frame(source.image_ids[0])
    after = FootballDataset(str(out), n_images=None, scale=4).frame(source.image_ids[0])
    ratio = after.image[~before.mask].mean() / before.image[~before.mask].mean()
    assert ratio == pytest.approx(float(brightness), abs=0.1)


def test_logo_is_painted_under_the_players_and_the_ground_truth_kept(source, tmp_path):
    from src.data.variants import LOGO

    out = FootballDataset(str(make_variant(source, "logo", tmp_path / "logo")), n_images=None, scale=4)
    assert out.image_ids == source.image_ids
    (centre_y, centre_x), (outer_h, outer_w) = LOGO[0], LOGO[1]
    for image_id in source.image_ids[:3]:
        before, after = source.frame(image_id), out.frame(image_id)
        assert np.array_equal(before.mask, after.mask) and before.n_instances == after.n_instances
        height, width = before.mask.shape
        rows, cols = np.mgrid[0:height, 0:width]
        y, x = (rows / height - centre_y) / (outer_h * 1.3), (cols / width - centre_x) / (outer_w * 1.3)
        far = y ** 2 + x ** 2 > 1
        changed = np.abs(before.image.astype(int) - after.image.astype(int)).sum(axis=-1) > 60
        assert changed[~far].mean() > 0.2          # the ring and the bar are painted
        assert not changed[far].any()              # and nothing else
        assert not changed[ndi.binary_erosion(before.mask)].any()


def test_unknown_variant(source, tmp_path):
    with pytest.raises(LabError, match=r"variant='night' is not allowed"):
        make_variant(source, "night", tmp_path)


@pytest.mark.parametrize("variant", ["graphics", "ticker"])
def test_graphics_cover_players_and_leave_the_rest(source, tmp_path, variant):
    from src.data.variants import GRAPHICS, TICKER, _graphics

    out = FootballDataset(str(make_variant(source, variant, tmp_path / "g")), n_images=None, scale=4)
    assert out.image_ids == source.image_ids
    image_id = source.image_ids[0]
    full = np.zeros((*source.full_mask(image_id).shape, 3), np.uint8)
    drawn, covered = _graphics(full, GRAPHICS if variant == "graphics" else TICKER)
    if variant == "ticker":                                  # edge to edge along the foot
        assert covered[-1].all() and covered[:, 0].any() and not covered[0].any()
    assert covered.any() and not covered.all() and np.array_equal(drawn.any(axis=-1), covered)
    assert np.array_equal(out.full_mask(image_id), source.full_mask(image_id) & ~covered)
    before, after = source.frame(image_id), out.frame(image_id)
    away = ndi.binary_erosion(~covered[::4, ::4][:before.image.shape[0], :before.image.shape[1]], iterations=2)
    assert np.abs(after.image.astype(int) - before.image.astype(int))[away].mean() < 3  # JPEG re-encoding only


def test_pillarbox_keeps_the_middle_four_by_three(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "pillarbox", tmp_path / "p")), n_images=None, scale=4)
    image_id = source.image_ids[0]
    full = source.full_mask(image_id)
    side = (full.shape[1] - round(full.shape[0] * 4 / 3)) // 2
    assert side > 0
    expected = full.copy()
    expected[:, :side] = expected[:, full.shape[1] - side:] = False
    assert np.array_equal(out.full_mask(image_id), expected)
    image = np.asarray(Image.open(out.image_path(image_id)))
    assert image[:, :side].max() <= 40 and image[:, full.shape[1] - side:].max() <= 40


@pytest.mark.slow
@pytest.mark.parametrize("variant, floor", [("closeup", 0.86), ("pitch", 0.80), ("kits", 0.58)])
def test_best_holds_on_frames_unlike_the_source(make_cfg, football_root, tmp_path, variant, floor):
    """experiment=best on close-ups, other kits and another pitch made from 20 real frames.

    Measured: close-up 0.882, pitch 0.820, kits turned 180 degrees 0.596 (some kits become
    pitch green); the source frames score 0.83 on the same sample.
    """
    from src.run import run

    source = FootballDataset(str(football_root), n_images=20, seed=1)
    root = make_variant(source, variant, tmp_path / variant, kit_hue_shift=180.0)
    cfg = make_cfg("experiment=best", "data.n_images=null", "logger.log_images=false", data_root=root)
    assert run(cfg) >= floor


# variant -> floors of mean Dice, mean player recall and the most frames below 0.3 Dice
ISSUE_15_FLOORS = {"zoom2": (0.87, 0.90, 0), "zoom3": (0.84, 0.89, 0), "zoom4": (0.80, 0.89, 0),
                   "edge": (0.86, 0.91, 0), "foot": (0.87, 0.89, 0), "touchline": (0.86, 0.89, 0),
                   "shadow": (0.84, 0.88, 0), "washed": (0.85, 0.89, 0), "graphics": (0.85, 0.89, 0),
                   "pillarbox": (0.85, 0.88, 0), "kits": (0.80, 0.82, 0), "logo": (0.80, 0.88, 0),
                   "ticker": (0.85, 0.88, 0)}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ISSUE_15_FLOORS)
def test_best_on_touchline_zooms_edges_and_touchline_frames(make_cfg, football_root, tmp_path, variant):
    """experiment=best on the issue-15 variants of the 50 evaluation frames (seed 0).

    Measured 2026-11-29 (experiments/GENERALITY.md; Dice / player recall / frames below 0.3): zoom2 0.889 /
    0.91 / 0, zoom3 0.860 / 0.91 / 0, zoom4 0.825 / 0.91 / 0, edge 0.880 / 0.93 / 0, touchline 0.878 / 0.90 / 0,
    shadow 0.860 / 0.89 / 0, washed 0.874 / 0.91 / 0; 2026-11-30: crops whose foot cuts a player at the waist
    0.897 / 0.91 / 0, graphics 0.880 / 0.91 / 0, and 0.714 / 0.91 / 0
    without the graphics step (the caption is kept as a player); pillarbox 0.883 / 0.91 / 0, and 0.761 / 0.90 /
    8 when the steps see the bars (postprocess.black_bars=null); kits turned 240 degrees (the light-blue team
    fluorescent yellow-green) 0.836 / 0.85 / 0, and 0.711 / 0.65 / 0 when brighter pitch may be any size
    (postprocess.steps.field.lit_min_area=0: the kits pass for sunlit grass); a logo painted on the pitch 0.832 /
    0.90 / 0, and 0.736 / 0.91 / 0 without the flat step (postprocess.steps.flat=null); a score ticker along the
    foot 0.873 / 0.91 / 0, and 0.854 / 0.89 / 0 without the picture cut above it (postprocess.ticker=null). With
    enclosure alone (postprocess=players_enclosed) zoom4 scored 0.562 / 0.55 / 13; under the shadow, matching the
    pitch in its own light only scored 0.675 / 0.62; the washed frames with a fixed field radius (chroma_limit=null)
    0.004 / 0.01 / 50.
    """
    from src.run import run_and_log

    source = FootballDataset(str(football_root), n_images=50, seed=0)
    dice, recall, below = ISSUE_15_FLOORS[variant]
    root = make_variant(source, variant, tmp_path / variant, kit_hue_shift=240.0)
    cfg = make_cfg("experiment=best", "data.n_images=null", "logger.log_images=false", "data.write_masks=false",
                   data_root=root)
    summary, _ = run_and_log(cfg)
    assert summary["dice_mean"] >= dice
    assert summary["blob_recall_mean"] >= recall
    assert summary["frames_dice_below_0.3"] <= below
    assert summary["region_oracle_dice_mean"] >= 0.9


@pytest.mark.slow
def test_best_keeps_players_a_tight_closeup_cuts_at_the_top_and_foot(make_cfg, football_root, tmp_path):
    """experiment=best on close-ups of the 50 evaluation frames whose largest player covers half the frame:
    groups run from the frame's top to its foot. Measured 2026-11-30 (Dice / player recall / frames below 0.3):
    0.925 / 0.99 / 0; 0.872 / 0.94 / 3 while such a group was held to the upright test and its cut-off feet to
    resting on visible pitch."""
    from src.run import run_and_log

    source = FootballDataset(str(football_root), n_images=50, seed=0)
    root = make_variant(source, "closeup", tmp_path / "closeup", closeup_fraction=0.5)
    cfg = make_cfg("experiment=best", "data.n_images=null", "logger.log_images=false", "data.write_masks=false",
                   data_root=root)
    summary, _ = run_and_log(cfg)
    assert summary["dice_mean"] >= 0.90
    assert summary["blob_recall_mean"] >= 0.95
    assert summary["frames_dice_below_0.3"] == 0


def test_a_variant_is_written_whole_into_a_new_folder_only(source, tmp_path, monkeypatch):
    import src.data.variants as variants

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(LabError, match=r"^out_dir='.*taken' exists and is not an empty folder"):
        make_variant(source, "kits", tmp_path / "taken")
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]

    def fail_after_the_first_frame(image, *args):
        if list((tmp_path).glob(".k.partial-*/images/*")):
            raise KeyboardInterrupt
        return image

    monkeypatch.setattr(variants, "_rotate_hue", fail_after_the_first_frame)
    with pytest.raises(KeyboardInterrupt):
        make_variant(source, "kits", tmp_path / "k")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    monkeypatch.undo()
    assert (make_variant(source, "kits", tmp_path / "k") / "annotations" / "instances_default.json").is_file()


@pytest.mark.parametrize("arguments, message", [
    (["--kit-hue-shift", "nan"], r"^error: --kit-hue-shift=nan is not a number"),
    (["--closeup-fraction", "0"], r"^error: --closeup-fraction=0.0 is out of range"),
    (["--root", "/no/such/frames"], r"^error: --root='/no/such/frames' is not a folder"),
])
def test_the_command_line_names_its_own_flag_in_one_line(tmp_path, synthetic_root, arguments, message):
    from src.data.variants import main

    with pytest.raises(SystemExit, match=message):
        main(["kits", str(tmp_path / "v"), "--root", str(synthetic_root), "--n-images", "2", *arguments])
    assert not (tmp_path / "v").exists()
