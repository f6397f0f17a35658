"""Pictures of results as (H, W, 3) uint8 arrays, for people to look at."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage import color

TRUE_POSITIVE = (0, 200, 80)
FALSE_POSITIVE = (240, 60, 40)
FALSE_NEGATIVE = (40, 110, 255)
# distinct hues for neighbouring component ids
COMPONENT_PALETTE = np.array([(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                              (145, 30, 180), (70, 240, 240), (240, 50, 230)], dtype=np.float32)
OVERLAY_LEGEND = (("player found", TRUE_POSITIVE), ("not a player", FALSE_POSITIVE), ("player missed", FALSE_NEGATIVE))


def overlay(image: np.ndarray, pred: np.ndarray, truth: np.ndarray | None) -> np.ndarray:
    """Image dimmed, with true positives green, false positives red and false negatives blue."""
    out = (image.astype(np.float32) * 0.5).astype(np.uint8)
    if truth is None:
        out[pred] = TRUE_POSITIVE
        return out
    out[pred & truth] = TRUE_POSITIVE
    out[pred & ~truth] = FALSE_POSITIVE
    out[~pred & truth] = FALSE_NEGATIVE
    return out


def label_image(labels: np.ndarray) -> np.ndarray:
    """One colour per cluster; noise (-1) black."""
    return (color.label2rgb(labels, bg_label=-1, bg_color=(0, 0, 0)) * 255).astype(np.uint8)


def components_image(image: np.ndarray, components: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """The image dimmed, each component tinted in a colour of its own, each centroid marked with a white cross.

    A plain blend with a fixed palette: it runs for every frame of an overlay
    video, where ``skimage.color.label2rgb`` costs more than the frame's clustering.
    """
    out = (image * 0.6).astype(np.uint8)
    found = components > 0
    tint = COMPONENT_PALETTE[(components[found] - 1) % len(COMPONENT_PALETTE)]
    out[found] = (image[found] * 0.4 + tint * 0.6).astype(np.uint8)
    h, w = components.shape
    for row, col in np.round(centroids).astype(int):
        for dr, dc in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (-2, 0), (2, 0), (0, -2), (0, 2)):
            r, c = row + dr, col + dc
            if 0 <= r < h and 0 <= c < w:
                out[r, c] = (255, 255, 255)
    return out


def mask_image(mask: np.ndarray) -> np.ndarray:
    """A bool mask as black and white."""
    return np.repeat((mask.astype(np.uint8) * 255)[..., None], 3, axis=-1)


def enlarge(picture: np.ndarray, min_width: int) -> np.ndarray:
    """``picture`` scaled up by a whole factor (nearest neighbour, pixels stay sharp) to at least ``min_width``."""
    factor = max(1, -(-min_width // picture.shape[1]))
    return np.repeat(np.repeat(picture, factor, axis=0), factor, axis=1)


def with_legend(picture: np.ndarray, entries) -> np.ndarray:
    """``picture`` with a strip below it: a colour swatch and a name for each ``(name, rgb)`` entry."""
    height = max(22, picture.shape[0] // 18)
    strip = Image.new("RGB", (picture.shape[1], height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    font = ImageFont.load_default(size=int(height * 0.6))
    x = height // 3
    for name, rgb in entries:
        draw.rectangle([x, height // 4, x + height // 2, height - height // 4], fill=tuple(rgb))
        x += height // 2 + height // 4
        draw.text((x, height // 2), name, fill=(0, 0, 0), font=font, anchor="lm")
        x += int(draw.textlength(name, font=font)) + height
    return np.concatenate([picture, np.asarray(strip)], axis=0)


def readable_overlay(image: np.ndarray, pred: np.ndarray, truth: np.ndarray | None, min_width: int = 960) -> np.ndarray:
    """``overlay`` enlarged to at least ``min_width`` pixels, with its legend (found, not a player, missed)."""
    legend = OVERLAY_LEGEND if truth is not None else OVERLAY_LEGEND[:1]
    return with_legend(enlarge(overlay(image, pred, truth), min_width), legend)
