"""The unit of data that flows through every stage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


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
        COCO image id.
    file_name : str
        Name of the image file inside the dataset's image folder.
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
    """

    image: np.ndarray
    mask: np.ndarray | None
    image_id: int
    file_name: str
    scale: int
    n_instances: int
    path: Path | None = None
    instances: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    @property
    def stem(self) -> str:
        return self.file_name.rsplit(".", 1)[0]
