import numpy as np
import pytest

from src.errors import LabError
from src.postprocess import EnclosedByField, FieldClusters, PostprocessChain, RemoveSmall
from src.postprocess.picture import overlay_top, picture_area

GREEN, RED, GREY = (40, 130, 40), (200, 30, 30), (120, 110, 130)


def boxed(image, top=0, bottom=0, left=0, right=0, value=0):
    """``image`` inside bars of ``value`` that many pixels wide."""
    out = np.full((image.shape[0] + top + bottom, image.shape[1] + left + right, 3), value, np.uint8)
    out[top:top + image.shape[0], left:left + image.shape[1]] = image
    return out


@pytest.mark.parametrize("bars", [
    {"left": 5, "right": 5},                                  # pillarbox
    {"top": 3, "bottom": 4},                                  # letterbox
    {"top": 2, "bottom": 2, "left": 6, "right": 3},           # both
    {},
])
def test_bars_are_found_on_every_side(bars):
    picture = np.full((20, 30, 3), GREEN, np.uint8)
    picture[:, 10] = 0                                        # a dark column inside the picture is no bar
    rows, cols = picture_area(boxed(picture, **bars))
    top, left = bars.get("top", 0), bars.get("left", 0)
    assert (rows, cols) == (slice(top, top + 20), slice(left, left + 30))


@pytest.mark.parametrize("value, found", [(0, True), (16, True), (40, True), (41, False)])
def test_a_bar_is_near_black(value, found):
    rows, cols = picture_area(boxed(np.full((10, 12, 3), GREEN, np.uint8), left=4, value=value))
    assert cols.start == (4 if found else 0)


def test_a_black_frame_is_whole():
    assert picture_area(np.zeros((6, 8, 3), np.uint8)) == (slice(0, 6), slice(0, 8))


def test_black_level_is_checked():
    with pytest.raises(LabError, match=r"black=300 is out of range"):
        picture_area(np.zeros((6, 8, 3), np.uint8), black=300)
    with pytest.raises(LabError, match=r"black_bars=-1 is out of range"):
        PostprocessChain({}, black_bars=-1)


def scene():
    """20 x 30: stands on top, a player inside the pitch and one the picture's left edge cuts."""
    image = np.full((20, 30, 3), GREEN, np.uint8)
    labels = np.zeros((20, 30), int)
    image[:4], labels[:4] = GREY, 1
    image[8:12, 12:15], labels[8:12, 12:15] = RED, 2
    image[10:15, :3], labels[10:15, :3] = RED, 2
    return image, labels


def chain(black_bars=40):
    return PostprocessChain({"field": FieldClusters(25.0), "enclosed": EnclosedByField(0.5), "small": RemoveSmall(3)},
                            black_bars=black_bars)


def test_steps_see_the_picture_inside_the_bars():
    image, labels = scene()
    unboxed = chain()(labels, image)
    assert unboxed.mask[10:15, :3].all()                     # the player the edge cuts is enclosed
    boxed_image = boxed(image, left=6, right=6)
    boxed_labels = np.pad(labels, ((0, 0), (6, 6)), constant_values=3)
    player = chain()(boxed_labels, boxed_image)
    assert np.array_equal(player.mask[:, 6:36], unboxed.mask) and not player.mask[:, :6].any()
    assert player.n_components == 2 and player.components.shape == boxed_labels.shape
    # seen whole, the bar is no pitch, and the player against it is not enclosed
    assert not chain(black_bars=None)(boxed_labels, boxed_image).mask[10:15, 6:9].any()


def test_input_is_not_mutated():
    image, labels = scene()
    boxed_image, boxed_labels = boxed(image, top=2, bottom=2), np.pad(labels, ((2, 2), (0, 0)), constant_values=3)
    before = boxed_image.copy(), boxed_labels.copy()
    chain()(boxed_labels, boxed_image)
    assert np.array_equal(boxed_image, before[0]) and np.array_equal(boxed_labels, before[1])


def ticker(picture, top, left=0, right=None, colour=(20, 40, 110)):
    """``picture`` with a ticker from row ``top`` to the foot, between columns ``left`` and ``right``, and text."""
    out = picture.copy()
    out[top:, left:right] = colour
    out[top + 2:top + 4, left + 2:right:5] = 240
    return out


@pytest.mark.parametrize("top, blended", [(34, False), (35, False), (35, True)])
def test_a_ticker_along_the_foot_is_found(top, blended):
    picture = np.full((40, 60, 3), GREEN, np.uint8)
    picture[20:36, 10:13] = RED                              # a player standing on its edge
    image = ticker(picture, top)
    if blended:                                              # the edge fell inside a pixel at working size
        image[top - 1] = (image[top - 2].astype(int) + image[top]) // 2
    assert overlay_top(image) == top                         # a half-blended row stays with the picture


@pytest.mark.parametrize("change", [
    lambda p: ticker(p, 35, left=3, right=57),               # inset from the edges: a caption, not a ticker
    lambda p: ticker(p, 20),                                 # deeper than 15% of the height
    lambda p: p,
])
def test_only_a_ticker_across_the_foot_counts(change):
    picture = np.full((40, 60, 3), GREEN, np.uint8)
    for column in range(60):                                 # a pitch line across the foot
        picture[39 - column // 10, column] = 255
    assert overlay_top(change(picture)) == 40


def test_steps_see_the_picture_above_a_ticker():
    image, labels = scene()
    image, labels = np.pad(image, ((0, 4), (0, 0), (0, 0)), mode="edge"), np.pad(labels, ((0, 4), (0, 0)), "edge")
    image[14:22, 20:23], labels[14:22, 20:23] = RED, 2       # a player whose feet touch the ticker
    image, labels = ticker(image, 22), np.where(np.arange(24)[:, None] >= 22, 3, labels)
    kept = chain()(labels, image).mask
    assert kept[14:22, 20:23].all() and not kept[22:].any()
    assert not PostprocessChain(chain().steps, ticker=None)(labels, image).mask[14:22, 20:23].any()
    with pytest.raises(LabError, match=r"ticker=2 is out of range"):
        PostprocessChain({}, ticker=2)
