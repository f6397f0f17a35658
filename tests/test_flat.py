import numpy as np
import pytest

from src.postprocess import RemoveFlat
from src.postprocess.flat import expected_heights, wide_rows
from tests.helpers import mask_state


def player(mask, top, left, height=16):
    """An upright player, 5 wide: head, torso, two legs apart."""
    mask[top:top + 2, left + 1:left + 4] = True
    mask[top + 2:top + height // 2, left:left + 5] = True
    mask[top + height // 2:top + height, left:left + 1] = True
    mask[top + height // 2:top + height, left + 4:left + 5] = True


def ring(mask, centre_y, centre_x, half_h=6, half_w=22):
    """A painted ring around a bar, seen flat: 45 x 13 pixels."""
    rows, cols = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    y, x = rows - centre_y, cols - centre_x
    outer = (y / half_h) ** 2 + (x / half_w) ** 2 <= 1
    inner = (y / (half_h - 2.5)) ** 2 + (x / (half_w - 5)) ** 2 <= 1
    bar = (np.abs(y) <= 1) & (np.abs(x) <= half_w - 4)
    logo = (outer & ~inner) | bar
    mask |= logo
    return logo


def pitch_with_players():
    """100 x 160 with three upright players 16 high."""
    mask = np.zeros((100, 160), bool)
    for top, left in ((20, 20), (30, 120), (40, 70)):
        player(mask, top, left)
    return mask


def test_a_logo_painted_on_the_pitch_is_removed_and_players_kept():
    mask = pitch_with_players()
    players = mask.copy()
    logo = ring(mask, 80, 60)
    out = RemoveFlat()(mask_state(mask)).mask
    assert out[logo].sum() <= 2                        # the ring's tips, a pixel each, are RemoveSmall's
    assert np.array_equal(out & ~logo, players)


def test_a_player_standing_on_a_logo_keeps_what_rises_above_it():
    mask = pitch_with_players()
    logo = ring(mask, 80, 60)
    standing = np.zeros_like(mask)
    player(standing, 64, 58)                           # his feet on the logo's bar
    mask |= standing
    out = RemoveFlat()(mask_state(mask)).mask
    above = np.arange(100)[:, None] < 75               # the logo's wide rows start at 75
    assert out[standing & above].all()
    assert out[logo & ~above].sum() <= 1                # the ring's lower tip


@pytest.mark.parametrize("thickness", [1, 2])
def test_a_pitch_line_through_a_player_does_not_make_him_lie(thickness):
    mask = pitch_with_players()
    player(mask, 60, 30, height=30)
    before = mask.copy()
    for column in range(10, 150):                      # a long line, slightly slanted, across his torso
        row = 66 + (column - 10) // 40
        mask[row:row + thickness, column] = True
    out = RemoveFlat()(mask_state(mask)).mask
    assert out[before].all()


def test_a_wall_of_players_shoulder_to_shoulder_is_kept():
    mask = pitch_with_players()
    for left in range(20, 20 + 8 * 5, 5):              # eight players, 40 wide: their shirts one wide band
        player(mask, 60, left)
    assert np.array_equal(RemoveFlat()(mask_state(mask)).mask, mask)
    assert not RemoveFlat(below=1.0)(mask_state(mask)).mask[62:68, 20:60].any()


def test_a_logo_crossed_by_a_pitch_line_is_removed_but_the_line_below_stays():
    mask = pitch_with_players()
    logo = ring(mask, 80, 60)
    mask[60:100, 40] = True                            # a line running down through it
    out = RemoveFlat()(mask_state(mask)).mask
    assert out[logo].sum() <= 3
    assert out[87:100, 40].all()


def test_a_lying_player_is_kept():
    mask = pitch_with_players()
    mask[70:75, 40:58] = True                          # 18 long on the ground, players stand 16 tall
    out = RemoveFlat()(mask_state(mask)).mask
    assert np.array_equal(out, mask)


def test_what_the_frame_edge_cuts_is_kept_and_without_scale_nothing_goes():
    mask = pitch_with_players()
    mask[96:100, 40:100] = True                        # a sliver along the bottom edge: a player it cuts
    assert np.array_equal(RemoveFlat()(mask_state(mask)).mask, mask)
    lone = np.zeros((100, 160), bool)
    ring(lone, 50, 80)                                 # no upright part: no player scale
    assert np.array_equal(RemoveFlat()(mask_state(lone)).mask, lone)


def test_input_is_not_mutated():
    mask = pitch_with_players()
    ring(mask, 80, 60)
    before = mask.copy()
    RemoveFlat()(mask_state(mask))
    assert np.array_equal(mask, before)


def test_width_is_in_players_heights():
    mask = pitch_with_players()
    logo = ring(mask, 80, 60)                          # 45 wide, 2.8 players' heights
    assert RemoveFlat(width=3.0)(mask_state(mask)).mask[logo].all()
    assert RemoveFlat(width=2.0)(mask_state(mask)).mask[logo].sum() <= 2


def test_expected_heights_follow_perspective():
    feet = np.array([20.0, 40.0, 60.0, 80.0, 50.0])
    heights = np.array([10.0, 14.0, 18.0, 22.0, 3.0])
    upright = np.array([True, True, True, True, False])
    np.testing.assert_allclose(expected_heights(heights, feet, upright), [10, 14, 18, 22, 16])
    few = np.array([True, True, False, False, False])
    np.testing.assert_allclose(expected_heights(heights, feet, few), 12.0)


def test_wide_rows_are_the_logo_under_a_standing_player():
    counts = np.array([3, 5, 5, 5, 40, 30, 25, 30, 40, 2])
    assert wide_rows(counts) == slice(4, 9)
