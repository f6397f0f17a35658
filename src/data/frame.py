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
