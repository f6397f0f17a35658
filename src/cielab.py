"""CIELAB of a frame, converted once for every stage that reads it.

Features and post-processing both read a frame in CIELAB; the conversion
costs more than most post-processing steps, so the last frame's is kept.
"""

from __future__ import annotations

import numpy as np
from skimage import color
from skimage.color.colorconv import xyz_from_rgb

_last: tuple[np.ndarray, np.ndarray] | None = None

# sRGB's transfer function for each of the 256 values of a uint8 channel: one lookup per pixel instead of
# scikit-image's power over every pixel (its rgb2xyz was half the conversion's time); then the same matrix
# and ``xyz2lab`` as its rgb2lab. Lab values move by at most 1e-4.


def _linear_table() -> np.ndarray:
    """(256,) float32: the linear light of each uint8 sRGB value."""
    values = np.arange(256) / 255.0
    return np.where(values > 0.04045, ((values + 0.055) / 1.055) ** 2.4, values / 12.92).astype(np.float32)


_LINEAR = _linear_table()
_XYZ_FROM_LINEAR = np.ascontiguousarray(xyz_from_rgb.T, dtype=np.float32)


def cielab(image: np.ndarray) -> np.ndarray:
    """CIELAB of an (H, W, 3) uint8 RGB image, (H, W, 3) float32, read-only: ``skimage.color.rgb2lab``'s.

    A read-only image (every decoded frame is one) that was the last one
    converted is not converted again; holding it keeps its identity from
    passing to another array.
    """
    global _last
    if _last is not None and image is _last[0]:
        return _last[1]
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"cielab needs a uint8 RGB image; got dtype {image.dtype} (convert with skimage's "
                         "img_as_ubyte)")
    lab = color.xyz2lab(np.take(_LINEAR, image) @ _XYZ_FROM_LINEAR)
    lab.flags.writeable = False
    if not image.flags.writeable:
        _last = (image, lab)
    return lab
