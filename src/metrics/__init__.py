"""Metrics: plain numbers from masks and label maps."""

from src.metrics.matching import confusion, hungarian_miou, oracle_mask
from src.metrics.overlap import dice, dice_from_counts, iou, iou_from_counts, overlap_counts, pooled_scores

__all__ = ["confusion", "dice", "dice_from_counts", "hungarian_miou", "iou", "iou_from_counts", "oracle_mask",
           "overlap_counts", "pooled_scores"]
