"""Feature blocks: each turns a Frame (its (H, W, 3) uint8 image) into (H, W, C) float32 channels."""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage as ndi
from skimage import color, filters

from src.cielab import cielab
from src.errors import LabError, check_bool, check_choice, check_range
from src.frame import Frame


def hsv_cone(image: np.ndarray) -> np.ndarray:
    """HSV as points of its cone, (s cos 2πh, s sin 2πh, v): hue is an angle, so two reds either side of
    h = 0 (a red kit's folds) lie side by side here, not at both ends of a hue axis; a grey's hue, which
    saturation 0 leaves undefined, counts for nothing.

    Parameters
    ----------
    image : (H, W, 3) uint8 ndarray

    Returns
    -------
    (H, W, 3) float32 ndarray
        The first two channels in [-1, 1], the third in [0, 1].
    """
    hsv = color.rgb2hsv(image.astype(np.float32) / 255.0)
    angle = 2 * np.pi * hsv[..., 0]
    return np.stack([hsv[..., 1] * np.cos(angle), hsv[..., 1] * np.sin(angle), hsv[..., 2]], axis=-1)


COLOR_SPACES = {
    "rgb": lambda image: image.astype(np.float32) / 255.0,
    # single precision, converted once per frame for the features and the post-processing
    "lab": cielab,
    "hsv": hsv_cone,
}


class ColorSpace:
    """Pixel colour in one colour space.

    Parameters
    ----------
    space : {"rgb", "lab", "hsv"}, default "lab"
        ``hsv`` is given as points of the HSV cone (``hsv_cone``).
    weight : float, default 1.0
        Multiplies the block's standardized channels.
    """

    def __init__(self, space: str = "lab", weight: float = 1.0):
        check_choice("space", space, COLOR_SPACES)
        check_range("weight", weight, 0)
        self.space = space
        self.weight = weight

    def __call__(self, frame: Frame) -> np.ndarray:
        return np.asarray(COLOR_SPACES[self.space](frame.image), dtype=np.float32)


class PixelPosition:
    """Pixel coordinates x, y (and optionally distance from the image centre), in [0, 1].

    Parameters
    ----------
    weight : float, default 0.5
        Multiplies the block's standardized channels; 0 turns position off.
    center_distance : bool, default False
        Add a third channel, the distance from the image centre.
    """

    def __init__(self, weight: float = 0.5, center_distance: bool = False):
        check_range("weight", weight, 0)
        check_bool("center_distance", center_distance)
        self.weight = weight
        self.center_distance = center_distance

    def __call__(self, frame: Frame) -> np.ndarray:
        h, w = frame.shape
        return _position_grid(h, w, self.center_distance)


@functools.lru_cache(maxsize=8)
def _position_grid(h: int, w: int, center_distance: bool) -> np.ndarray:
    # every frame of a run has the same size, so the grid is built once; read-only so no caller can alter it
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = [x / max(w - 1, 1), y / max(h - 1, 1)]
    if center_distance:
        channels.append(np.hypot(channels[0] - 0.5, channels[1] - 0.5))
    grid = np.stack(channels, axis=-1)
    grid.setflags(write=False)
    return grid


class Texture:
    """Local texture of the lightness channel: local standard deviation and gradient magnitude.

    Parameters
    ----------
    window : int, default 3
        Side of the square window of the local standard deviation; odd, >= 3.
    weight : float, default 0.5
    """

    def __init__(self, window: int = 3, weight: float = 0.5):
        check_range("window", window, 3, integer=True)
        if window % 2 == 0:
            raise LabError(f"window={window} must be odd; use {window + 1}", key="window")
        check_range("weight", weight, 0)
        self.window = window
        self.weight = weight

    def __call__(self, frame: Frame) -> np.ndarray:
        lightness = color.rgb2gray(frame.image).astype(np.float32)
        mean = ndi.uniform_filter(lightness, self.window)
        spread = np.sqrt(np.maximum(ndi.uniform_filter(lightness ** 2, self.window) - mean ** 2, 0))
        gradient = filters.sobel(lightness)
        return np.stack([spread, gradient], axis=-1).astype(np.float32)
