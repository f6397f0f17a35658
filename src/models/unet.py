"""A U-Net: the autoencoder's shape with skip connections from each encoder level to the decoder."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from src.errors import check_range
from src.models.blocks import MapModel, check_widths, double_conv, pad_to


class UNet(MapModel):
    """U-Net (Ronneberger et al. 2015), small: reconstruction or segmentation head.

    Parameters
    ----------
    in_channels : int, default 3
    out_channels : int, default 3
        3 to reconstruct the image (sigmoid output), 1 for a player-mask logit.
    widths : sequence of int, default (16, 32, 64, 128)
        Channels per level, full resolution first; the last is the bottleneck.

    ``forward`` gives (N, out_channels, H, W): in [0, 1] when reconstructing
    (out_channels == in_channels), logits otherwise. ``feature_maps`` returns
    ``bottleneck`` and the decoder levels ``dec1..`` (coarse to fine).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, widths=(16, 32, 64, 128)):
        super().__init__()
        check_range("in_channels", in_channels, 1, integer=True)
        check_range("out_channels", out_channels, 1, integer=True)
        self.widths = check_widths(widths)
        self.reconstructs = out_channels == in_channels
        self.multiple = 2 ** (len(self.widths) - 1)
        self.encoder = nn.ModuleList(
            [double_conv(in_channels, self.widths[0])]
            + [nn.Sequential(nn.MaxPool2d(2), double_conv(self.widths[i], self.widths[i + 1]))
               for i in range(len(self.widths) - 1)])
        reverse = tuple(reversed(self.widths))
        self.decoder = nn.ModuleList(double_conv(reverse[i] + reverse[i + 1], reverse[i + 1])
                                     for i in range(len(self.widths) - 1))
        self.head = nn.Conv2d(self.widths[0], out_channels, 1)
        self.feature_info = {"bottleneck": (self.widths[-1], self.multiple),
                             **{f"dec{i + 1}": (reverse[i + 1], self.multiple // 2 ** (i + 1))
                                for i in range(len(self.widths) - 1)}}

    @property
    def task(self) -> str:
        return "reconstruction" if self.reconstructs else "segmentation"

    def feature_maps(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h, w = images.shape[-2:]
        x = pad_to(images, self.multiple)
        skips = []
        for level in self.encoder:
            x = level(x)
            skips.append(x)
        maps = {"bottleneck": x}
        for i, level in enumerate(self.decoder):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = level(torch.cat([x, skips[-2 - i]], dim=1))
            maps[f"dec{i + 1}"] = x
        out = self.head(x)
        maps["output"] = (torch.sigmoid(out) if self.reconstructs else out)[..., :h, :w]
        return maps
