"""Metrics: plain numbers from masks and label maps."""

from src.metrics.matching import confusion, hungarian_miou, oracle_mask
from src.metrics.overlap import (
    dice,
    dice_from_counts,
    iou,
    iou_from_counts,
    outline_error_share,
    overlap_counts,
    pooled_scores,
)
from src.metrics.regions import blob_recall, region_oracle_mask

__all__ = ["blob_recall", "confusion", "dice", "dice_from_counts", "hungarian_miou", "iou", "iou_from_counts",
           "oracle_mask", "outline_error_share", "overlap_counts", "pooled_scores", "region_oracle_mask"]
