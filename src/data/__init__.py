"""Datasets: frames at working size with their ground-truth masks."""

from src.data.football import FootballDataset, read_image, reduce_mask, working_size
from src.data.frame import Frame
from src.data.synthetic import ensure_synthetic_dataset

__all__ = ["Frame", "FootballDataset", "ensure_synthetic_dataset", "read_image", "reduce_mask", "working_size"]
