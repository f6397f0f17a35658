"""The unit of data that flows through every stage, and the decoding of its image file at any size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from src.errors import LabError


@dataclass(frozen=True)
class Frame:
    """One image at working size, with its ground truth when there is one.

    Attributes
    ----------
    image : (H, W, 3) uint8 ndarray
        RGB pixels at working size.
    mask : (H, W) bool ndarray or None
        Union of all player annotations, reduced to working size.
    image_id : int
        COCO image id; a video frame's index in the video.
    file_name : str
        The image file's path inside the dataset's folder; ``frame_<index>`` for a video frame.
    scale : int
        Downscale factor from the original resolution.
    n_instances : int
        Number of ground-truth annotations (player blobs) of the image.
    path : Path or None
        The image file, for stages that decode it at another size (CNN
        features); None for frames made in memory.
    instances : (H, W) int32 ndarray or None
        Which annotation each ground-truth pixel belongs to: 0 outside
        ``mask``, ``i`` for the image's i-th annotation (the one covering
        most of the pixel). Players a downscale splits into several blobs
        stay one player here.
    timestamp : float or None
        Seconds into the video, for a frame of one.
    """

    image: np.ndarray
    mask: np.ndarray | None
    image_id: int
    file_name: str
    scale: int
    n_instances: int
    path: Path | None = None
    instances: np.ndarray | None = None
    timestamp: float | None = None

    def image_at(self, size: tuple[int, int]) -> np.ndarray:
        """The image at ``size`` (width, height), (h, w, 3) uint8: decoded from its file when it has one, else
        resized from the working-size pixels."""
        if self.path is not None:
            return read_image(self.path, size)
        return np.asarray(Image.fromarray(self.image).resize(size, Image.Resampling.BICUBIC))

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    @property
    def stem(self) -> str:
        return self.file_name.rsplit(".", 1)[0]

    @property
    def artifact_stem(self) -> str:
        """``<image id>-<file stem>``, flat: output names that sort by image id and match the metrics tables."""
        stem = self.stem.replace("/", "_")
        return f"{self.image_id:05d}-{stem}" if isinstance(self.image_id, int) else f"{self.image_id}-{stem}"


def _rgb(im: Image.Image) -> Image.Image:
    """``im`` as 8-bit RGB; a 16-bit grey image scaled down to 8 bits, which ``convert`` would clip at 255."""
    if im.mode.startswith("I;16") or im.mode == "I":
        # "I" is how Pillow opens some 16-bit greyscale PNGs: their values run to 65535
        values = np.asarray(im).astype(np.int64)
        if im.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values >> 8
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode == "F":
        return Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8), "L").convert("RGB")
    return im.convert("RGB")


def read_image(path: Path, size: tuple[int, int], *, expected: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a JPEG straight at reduced size.

    The decoder's DCT scaling (PIL ``draft``) does most of the reduction; a
    box filter takes the rest, so a 1920x1080 frame at scale 8 is never
    decoded at full size.

    Parameters
    ----------
    path : Path
        Image file.
    size : (width, height)
        Output size.
    expected : (width, height), optional
        Size the file must have; a mismatch is an error because the ground
        truth would not line up.

    Returns
    -------
    (height, width, 3) uint8 ndarray
    """
    try:
        with Image.open(path) as im:
            if expected is not None and im.size != tuple(expected):
                raise LabError(
                    f"image {path} is {im.size[0]}x{im.size[1]} but the annotations say "
                    f"{expected[0]}x{expected[1]}; fix the annotation file or the image"
                )
            im.draft("RGB", size)
            rgb = _rgb(im)
    except Image.DecompressionBombError as exc:
        raise LabError(f"image {path} is too large to decode safely ({exc}); downscale it") from None
    except (OSError, SyntaxError, UnidentifiedImageError) as exc:
        raise LabError(f"image {path} cannot be read ({exc}); replace the file or drop it from the "
                       "annotations") from None
    if rgb.size != tuple(size):
        rgb = rgb.resize(size, Image.Resampling.BOX)
    return np.asarray(rgb)
