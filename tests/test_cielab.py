import numpy as np
import pytest
from skimage import color

from src.cielab import cielab


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (6, 7, 3)).astype(np.uint8)


def test_cielab_is_scikit_images_conversion_read_only():
    image = _image()
    lab = cielab(image)
    assert lab.dtype == np.float32 and lab.shape == image.shape
    assert np.allclose(lab, color.rgb2lab(image), atol=1e-3)
    with pytest.raises(ValueError, match="read-only"):
        lab[0, 0, 0] = 1.0


def test_a_read_only_frame_is_converted_once():
    image = _image()
    image.flags.writeable = False
    assert cielab(image) is cielab(image)
    other = _image(1)
    other.flags.writeable = False
    assert not np.array_equal(cielab(other), cielab(image))


def test_a_writable_image_changed_in_place_is_converted_again():
    image = _image()
    before = cielab(image).copy()
    image[:] = 255 - image
    assert not np.allclose(cielab(image), before)
    assert np.allclose(cielab(image), color.rgb2lab(image), atol=1e-3)


def test_every_channel_value_converts_as_scikit_image_does():
    ramp = np.arange(256, dtype=np.uint8)
    # each value on each channel alone, and with the other two at other values
    image = np.stack([np.stack([ramp, np.zeros_like(ramp), 255 - ramp], -1),
                      np.stack([ramp[::-1], ramp, np.full_like(ramp, 128)], -1)])
    assert np.abs(cielab(image) - color.rgb2lab(image)).max() < 2e-4


def test_a_float_image_is_refused_with_its_dtype():
    with pytest.raises(ValueError, match="uint8 RGB image; got dtype float64"):
        cielab(np.zeros((2, 2, 3)))
