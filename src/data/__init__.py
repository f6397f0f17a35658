"""Datasets: frames at working size, with their ground-truth masks where there are any."""

from src.data.folder import ImageFolder
from src.data.football import FootballDataset, reduce_mask, working_size
from src.data.synthetic import ensure_synthetic_dataset
from src.data.video import VideoFile, write_video
from src.frame import Frame, read_image

__all__ = ["Frame", "FootballDataset", "ImageFolder", "VideoFile", "ensure_synthetic_dataset", "read_image",
           "reduce_mask", "working_size", "write_video"]
