"""Layers shared by the autoencoder and the U-Net."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from src.errors import LabError, check_range


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
        raise LabError("model.widths=[] has no level; give channel counts per level, e.g. [16, 32, 64]")
    for width in widths:
        check_range("model.widths", width, 1, integer=True)
    return widths


def pad_to(x, multiple: int):
    """Replicate-pad (N, C, H, W) on the bottom and right to sides divisible by ``multiple``."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple), mode="replicate")
