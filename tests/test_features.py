import numpy as np
import pytest

from src.data import Frame
from src.errors import LabError
from src.features import ColorSpace, FeatureStack, PixelPosition, Texture, standardize


def frame_of(image):
    return Frame(image=image, mask=None, image_id=1, file_name="x.jpg", scale=1, n_instances=0)


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 9, 3), dtype=np.uint8)


def test_standardize_gives_zero_mean_unit_variance_and_keeps_input(image):
    raw = image.astype(np.float32)
    before = raw.copy()
    out = standardize(raw)
    assert np.allclose(out.reshape(-1, 3).mean(0), 0, atol=1e-5)
    assert np.allclose(out.reshape(-1, 3).std(0), 1, atol=1e-4)
    assert np.array_equal(raw, before)


def test_constant_channel_becomes_zero():
    assert np.all(standardize(np.ones((3, 3, 1), np.float32)) == 0)


@pytest.mark.parametrize("space", ["rgb", "lab", "hsv"])
def test_color_spaces_shape_and_dtype(image, space):
    out = ColorSpace(space)(frame_of(image))
    assert out.shape == (6, 9, 3) and out.dtype == np.float32


def test_reds_either_side_of_hue_zero_are_neighbours_in_hsv():
    reds = np.array([[[200, 30, 40], [200, 40, 30], [30, 200, 40]]], np.uint8)  # hue 0.99, 0.01, and a green
    out = ColorSpace("hsv")(frame_of(reds))
    near, far = np.linalg.norm(out[0, 0] - out[0, 1]), np.linalg.norm(out[0, 0] - out[0, 2])
    assert near < 0.1 * far


def test_position_channels(image):
    out = PixelPosition(center_distance=True)(frame_of(image))
    assert out.shape == (6, 9, 3)
    assert out[0, 0, 0] == 0 and out[0, -1, 0] == 1 and out[-1, 0, 1] == 1
    assert out[0, 0, 2] == pytest.approx(np.hypot(0.5, 0.5))


def test_stack_weights_scale_each_block(image):
    stack = FeatureStack({"color": ColorSpace("lab", 1.0), "position": PixelPosition(weight=0.25)})
    out = stack(frame_of(image))
    assert out.shape == (6, 9, 5) and out.dtype == np.float32
    assert np.allclose(out[..., 3:].reshape(-1, 2).std(0), 0.25, atol=1e-4)


def test_zero_weight_block_is_left_out(image):
    out = FeatureStack({"color": ColorSpace("rgb"), "position": PixelPosition(weight=0.0)})(frame_of(image))
    assert out.shape[-1] == 3


def test_unknown_color_space():
    with pytest.raises(LabError, match=r"space='xyz' is not allowed; choose one of"):
        ColorSpace("xyz")


def test_all_weights_zero():
    with pytest.raises(LabError, match="no block with weight > 0"):
        FeatureStack({"position": PixelPosition(weight=0.0)})


def test_negative_weight():
    with pytest.raises(LabError, match=r"weight=-1.0 is out of range"):
        PixelPosition(weight=-1.0)


def test_texture_is_zero_on_flat_and_high_on_edges():
    flat = np.full((10, 12, 3), 120, np.uint8)
    assert np.allclose(Texture()(frame_of(flat)), 0, atol=1e-6)
    edge = flat.copy()
    edge[:, 6:] = 250
    out = Texture()(frame_of(edge))
    assert out.shape == (10, 12, 2)
    assert out[5, 5:7, 1].min() > out[5, 0, 1] + 0.1 and out[5, 5:7, 0].min() > 0.1


@pytest.mark.parametrize("window, match", [(4, r"window=4 must be odd; use 5"),
                                           (1, r"window=1 is out of range")])
def test_texture_bad_window(window, match):
    with pytest.raises(LabError, match=match):
        Texture(window=window)
