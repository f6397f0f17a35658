"""A convolutional autoencoder whose bottleneck code serves as pixel features."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from src.errors import check_range
from src.models.blocks import MapModel, check_widths, double_conv, pad_to


class ConvAutoencoder(MapModel):
    """Encoder of stride-2 levels, a 1x1 bottleneck code, and a mirrored decoder, without skips.

    Parameters
    ----------
    in_channels : int, default 3
    widths : sequence of int, default (16, 32, 64)
        Channels of each level; level i works at stride 2**(i + 1).
    code_channels : int, default 8
        Channels of the code at stride 2**len(widths).

    ``forward`` maps (N, C, H, W) images in [0, 1] to reconstructions in
    [0, 1] of the same size; ``feature_maps`` returns the code and the
    decoder's levels by name.
    """

    def __init__(self, in_channels: int = 3, widths=(16, 32, 64), code_channels: int = 8):
        super().__init__()
        check_range("in_channels", in_channels, 1, integer=True)
        check_range("code_channels", code_channels, 1, integer=True)
        self.widths = check_widths(widths)
        self.multiple = 2 ** len(self.widths)
        channels = (in_channels, *self.widths)
        self.encoder = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(channels[i], channels[i + 1])) for i in range(len(self.widths)))
        self.code = nn.Conv2d(self.widths[-1], code_channels, 1)
        up = (code_channels, *reversed(self.widths))
        self.decoder = nn.ModuleList(double_conv(up[i], up[i + 1]) for i in range(len(self.widths)))
        self.head = nn.Conv2d(self.widths[0], in_channels, 1)
        self.feature_info = {"code": (code_channels, self.multiple),
                             **{f"dec{i + 1}": (up[i + 1], self.multiple // 2 ** (i + 1))
                                for i in range(len(self.widths))}}

    def feature_maps(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named maps of (N, C, H, W) images: ``code`` and ``dec1..`` (decoder levels, coarse to fine)."""
        h, w = images.shape[-2:]
        x = pad_to(images, self.multiple)
        for level in self.encoder:
            x = level(x)
        maps = {"code": self.code(x)}
        x = maps["code"]
        for i, level in enumerate(self.decoder):
            x = level(F.interpolate(x, scale_factor=2, mode="nearest"))
            maps[f"dec{i + 1}"] = x
        maps["output"] = torch.sigmoid(self.head(x))[..., :h, :w]
        return maps
