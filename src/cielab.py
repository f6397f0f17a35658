"""CIELAB of a frame, converted once for every stage that reads it.

Features and post-processing both read a frame in CIELAB; the conversion
costs more than most post-processing steps, so the last frame's is kept.
"""

from __future__ import annotations

import numpy as np
from skimage import color

_last: tuple[np.ndarray, np.ndarray] | None = None


def cielab(image: np.ndarray) -> np.ndarray:
    """CIELAB of an (H, W, 3) uint8 RGB image, (H, W, 3) float32, read-only.

    A read-only image (every decoded frame is one) that was the last one
    converted is not converted again; holding it keeps its identity from
    passing to another array.
    """
    global _last
    if _last is not None and image is _last[0]:
        return _last[1]
    lab = color.rgb2lab(np.asarray(image, dtype=np.float32) / 255.0)
    lab.flags.writeable = False
    if isinstance(image, np.ndarray) and not image.flags.writeable:
        _last = (image, lab)
    return lab
