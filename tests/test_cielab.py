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
