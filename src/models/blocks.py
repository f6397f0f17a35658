"""Layers shared by the autoencoder and the U-Net."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from src.errors import LabError, check_range


class MapModel(nn.Module):
    """A model that names its maps: subclasses set ``feature_info`` (name -> (channels, reduction)) and
    implement ``feature_maps`` (name -> map, plus ``output``); calling the model gives ``output``."""

    feature_info: dict[str, tuple[int, int]]
    #: what it is trained for: "reconstruction" (of its input) or "segmentation" (player-mask logits)
    task: str = "reconstruction"

    def feature_maps(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.feature_maps(images)["output"]


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convs, each with BatchNorm and ReLU; keeps the size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def check_widths(widths) -> tuple[int, ...]:
    widths = tuple(widths)
    if not widths:
        raise LabError("widths=[] has no level; give channel counts per level, e.g. [16, 32, 64]", key="widths")
    for width in widths:
        check_range("widths", width, 1, integer=True)
    return widths


def pad_to(x, multiple: int):
    """Replicate-pad (N, C, H, W) on the bottom and right to sides divisible by ``multiple``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="replicate")


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames -> (N, 3, H, W) float32 in [0, 1], a new tensor."""
    return torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float().div_(255.0)
