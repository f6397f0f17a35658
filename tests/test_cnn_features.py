"""CNN feature block: input size, upsampling, PCA, the disk cache and bad values."""

import numpy as np
import pytest
from PIL import Image

from src.backbones import create_backbone
from src.data import Frame
from src.errors import LabError
from src.features.cnn import CNNFeatures


class CountingBackbone:
    """The real EfficientNet-Lite0 backbone, counting forward passes and recording input sizes."""

    def __init__(self):
        self.inner = create_backbone("tf_efficientnet_lite0", (1, 2))
        self.channels, self.cache_id, self.tags = self.inner.channels, self.inner.cache_id, self.inner.tags
        self.calls, self.inputs = 0, []

    def __call__(self, image):
        self.calls += 1
        self.inputs.append(image.shape)
        return self.inner(image)


@pytest.fixture(scope="module")
def backbone():
    return CountingBackbone()


def frame_on_disk(tmp_path, scale=8, name="f.jpg"):
    full = np.random.default_rng(1).integers(0, 256, (256, 384, 3), dtype=np.uint8)
    path = tmp_path / name
    Image.fromarray(full).save(path)
    small = np.asarray(Image.fromarray(full).resize((384 // scale, 256 // scale)))
    return Frame(image=small, mask=None, image_id=1, file_name=name, scale=scale, n_instances=0, path=path)


def test_network_sees_a_larger_image_than_the_clustering(backbone, tmp_path):
    frame = frame_on_disk(tmp_path)
    features = CNNFeatures(backbone, input_scale=2, n_components=None)
    out = features(frame)
    assert backbone.inputs[-1] == (128, 192, 3)        # original / 2, not the 32x48 working size
    assert out.shape == (32, 48, sum(backbone.channels)) and out.dtype == np.float32


def test_pca_reduces_to_n_components_deterministically(backbone, tmp_path):
    frame = frame_on_disk(tmp_path)
    features = CNNFeatures(backbone, input_scale=2, n_components=5, seed=3)
    first = features(frame)
    assert first.shape == (32, 48, 5)
    assert np.array_equal(first, features(frame))


def test_cache_skips_the_network_and_gives_the_same_features(backbone, tmp_path):
    frame = frame_on_disk(tmp_path)
    features = CNNFeatures(backbone, input_scale=2, n_components=None, cache_dir=str(tmp_path / "cache"))
    before = backbone.calls
    first = features(frame)
    second = features(frame)
    assert backbone.calls == before + 1
    assert np.array_equal(first, second)
    other_size = CNNFeatures(backbone, input_scale=4, n_components=None, cache_dir=str(tmp_path / "cache"))
    other_size(frame)
    assert backbone.calls == before + 2                 # the input size is part of the key
    assert len(list((tmp_path / "cache" / "cnn").glob("*.npz"))) == 2


def test_frames_without_a_file_are_resized_from_memory(backbone):
    image = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    frame = Frame(image=image, mask=None, image_id=1, file_name="m.jpg", scale=4, n_instances=0)
    out = CNNFeatures(backbone, input_scale=1, n_components=3)(frame)
    assert backbone.inputs[-1] == (80, 120, 3) and out.shape == (20, 30, 3)


@pytest.mark.parametrize("size, fitted", [((12, 16), 16), ((3, 4), 12)])
def test_coarse_maps_still_give_n_components(backbone, size, fitted):
    """A stage grid with fewer cells than components is reduced at the working size; a frame with
    fewer pixels than components keeps as many as it has and pads with constant channels."""
    image = np.random.default_rng(4).integers(0, 256, (*size, 3), dtype=np.uint8)
    frame = Frame(image=image, mask=None, image_id=1, file_name="m.jpg", scale=4, n_instances=0)
    out = CNNFeatures(backbone, input_scale=4, n_components=16)(frame)
    assert out.shape == (*size, 16)
    assert np.all(out[..., fitted:] == 0) and np.isfinite(out).all()
    assert out[..., 0].std() > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"input_scale": 0}, r"input_scale=0"),
    ({"n_components": 1000}, r"n_components=1000 is out of range"),
    ({"weight": -1}, r"weight=-1"),
])
def test_bad_values(backbone, kwargs, message):
    with pytest.raises(LabError, match=message):
        CNNFeatures(backbone, **kwargs)
