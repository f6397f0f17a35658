import numpy as np
import pytest
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


def test_closeup_enlarges_the_largest_player_to_the_asked_fraction(source, tmp_path):
    out = FootballDataset(str(make_variant(source, "closeup", tmp_path / "c", closeup_fraction=0.1)),
                          n_images=None, scale=4)
    with_players = [i for i in source.image_ids if source.coco.getAnnIds(imgIds=[i])]
    assert out.image_ids == with_players
    fractions = [out.full_mask(i).mean() for i in out.image_ids]
    assert all(f >= 0.05 for f in fractions)  # the crop holds the player at about a tenth, plus its neighbours
    frame = out.frame(out.image_ids[0])
    assert frame.image.shape[:2] == source.frame(source.image_ids[0]).image.shape[:2]


def test_unknown_variant(source, tmp_path):
    with pytest.raises(LabError, match=r"variant='night' is not allowed"):
        make_variant(source, "night", tmp_path)


@pytest.mark.slow
def test_best_holds_on_frames_unlike_the_source(make_cfg, football_root, tmp_path):
    """experiment=best on close-ups, other kits and another pitch made from 20 real frames.

    Measured: close-up 0.882, pitch 0.820, kits turned 180 degrees 0.596 (some kits become
    pitch green); the source frames score 0.83 on the same sample.
    """
    from src.run import run

    source = FootballDataset(str(football_root), n_images=20, seed=1)
    floors = {"closeup": 0.86, "pitch": 0.80, "kits": 0.58}
    for variant, floor in floors.items():
        root = make_variant(source, variant, tmp_path / variant, kit_hue_shift=180.0)
        cfg = make_cfg("experiment=best", "data.n_images=null", "logger.log_images=false", data_root=root)
        assert run(cfg) >= floor, variant
