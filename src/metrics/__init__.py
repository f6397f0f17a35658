"""Metrics: plain numbers from masks and label maps."""

from src.metrics.overlap import dice, dice_from_counts, iou, iou_from_counts, overlap_counts, pooled_scores

__all__ = ["dice", "dice_from_counts", "iou", "iou_from_counts", "overlap_counts", "pooled_scores"]
