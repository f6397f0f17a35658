import numpy as np
import pytest

from src.postprocess import RemoveGraphics
from src.postprocess.graphics import graphic_core
from tests.helpers import mask_state


def player(mask, top, left, height=24):
    """An upright player: head, torso, two legs apart."""
    mask[top:top + 3, left + 2:left + 5] = True
    mask[top + 3:top + height // 2, left:left + 7] = True
    mask[top + height // 2:top + height, left:left + 2] = True
    mask[top + height // 2:top + height, left + 5:left + 7] = True


def caption_frame():
    """120 x 200: a 10 x 90 caption crossed by a pitch line, players around it."""
    mask = np.zeros((120, 200), bool)
    caption = np.zeros_like(mask)
    caption[90:100, 40:130] = True
    mask |= caption
    mask[60:115, 99:101] = True                        # the halfway line running through it
    player(mask, 20, 30)
    player(mask, 62, 140)
    mask[40:44, 150:176] = True                        # a player with his arms out: a wide, full band ...
    mask[36:40, 160:166] = True
    mask[44:64, 158:168] = True                        # ... over a body that holds most of his pixels
    return mask, caption


def test_caption_is_removed_and_players_kept():
    mask, caption = caption_frame()
    out = RemoveGraphics()(mask_state(mask)).mask
    assert not out[caption].any()
    assert np.array_equal(out, mask & ~caption)


def test_input_is_not_mutated():
    mask, _ = caption_frame()
    before = mask.copy()
    RemoveGraphics()(mask_state(mask))
    assert np.array_equal(mask, before)


def test_graphic_core_is_the_bar_without_the_line():
    mask, caption = caption_frame()
    part = mask[60:115, 40:130]
    rows, cols = graphic_core(part)
    assert (rows.start + 60, rows.stop + 60, cols.start + 40, cols.stop + 40) == (90, 100, 40, 130)


@pytest.mark.parametrize("change, reason", [
    (lambda m: m.__setitem__((slice(90, 100), slice(0, 90)), True), "touches the frame's edge"),
    (lambda m: m.__setitem__((slice(94, 100), slice(40, 130, 3)), False), "fills under 0.9 of its box"),
    (lambda m: m.__setitem__((slice(60, 110), slice(40, 130)), True), "as high as wide / 2"),
])
def test_what_is_not_a_graphic_stays(change, reason):
    mask = np.zeros((120, 200), bool)
    mask[90:100, 40:130] = True
    change(mask)
    assert np.array_equal(RemoveGraphics()(mask_state(mask)).mask, mask), reason


def test_a_bar_kept_as_its_outline_is_removed_whole():
    mask = np.zeros((120, 200), bool)
    mask[90:100, 40:130] = True
    mask[92:98, 42:128] = False                        # its plain inside given to a cluster of its own
    mask[60:95, 80:87] = True                          # a player whose feet it hides
    out = RemoveGraphics()(mask_state(mask)).mask
    assert not out[90:100, 40:130].any() and out[60:90, 80:87].all()


def wall(mask, top, left, players=5, width=7):
    """Players shoulder to shoulder: heads above a full band of shirts, legs together below."""
    for i in range(players):
        x = left + i * width
        mask[top:top + 3, x + 2:x + 5] = True
        mask[top + 3:top + 16, x:x + width] = True
        mask[top + 16:top + 21, x + 2:x + 5] = True


def test_a_wall_of_players_stays():
    mask = np.zeros((120, 200), bool)
    wall(mask, 40, 50)
    assert np.array_equal(RemoveGraphics()(mask_state(mask)).mask, mask)
    # its shirts make a full, wide band holding most of it: only the heads and legs beyond it tell
    assert not RemoveGraphics(edge=1.0)(mask_state(mask)).mask[43:56].any()


def test_player_cut_by_the_frame_edge_stays():
    mask = np.zeros((120, 200), bool)
    mask[100:, 20:60] = True                           # a close-up player's shoulders, cut by the bottom edge
    assert np.array_equal(RemoveGraphics()(mask_state(mask)).mask, mask)


@pytest.mark.parametrize("min_area, removed", [(0.02, True), (0.05, False)])
def test_min_area_is_a_share_of_the_frame(min_area, removed):
    mask = np.zeros((120, 200), bool)
    mask[90:100, 40:130] = True                        # 900 px: 0.0375 of the frame
    out = RemoveGraphics(min_area=min_area)(mask_state(mask)).mask
    assert out.any() != removed


def test_the_same_caption_at_twice_the_size_is_removed():
    mask, caption = caption_frame()
    big = np.kron(mask, np.ones((2, 2), bool))
    out = RemoveGraphics()(mask_state(big)).mask
    assert not out[np.kron(caption, np.ones((2, 2), bool))].any() and out.sum() > 0


def test_empty_mask_passes_through():
    state = mask_state(np.zeros((10, 10), bool))
    assert RemoveGraphics()(state) is state
