"""A run's summary metrics, accumulated frame by frame so that a stream of any length keeps a fixed amount."""

from __future__ import annotations

import math

from src.metrics import pooled_scores

COUNT_KEYS = ("tp", "fp", "fn")
# a frame scoring below this has lost most of its players: counted apart, since a mean hides it
LOW_DICE = 0.3
STAGES = ("load", "features", "cluster", "postprocess", "metrics")
# per-frame metrics whose means lead the summary, in this order; any other per-frame metric follows
MEAN_KEYS = ("dice", "iou", "oracle_dice", "hungarian_miou", "blob_recall", "region_oracle_dice",
             "outline_error_share", "silhouette", "inertia", "n_clusters", "n_components", "n_instances",
             "component_count_error")
POOLED_KEYS = ("dice_pooled", "iou_pooled", "precision_pooled", "recall_pooled")
SUMMARY_KEYS = ("dice_mean", "iou_mean", *POOLED_KEYS, "oracle_dice_mean", "hungarian_miou_mean",
                "blob_recall_mean", "region_oracle_dice_mean", "frames_dice_below_0.3",
                "silhouette_mean", "inertia_mean",
                "n_clusters_mean", "n_components_mean", "n_instances_mean", "component_count_error_mean",
                "n_frames", "seconds_per_image") + tuple(f"seconds_{stage}" for stage in STAGES)


def lower_is_better(key: str) -> bool:
    """Whether a summary metric improves as it falls (seconds, inertia, count errors)."""
    return key.startswith(("seconds", "inertia", "component_count_error", "frames_dice_below"))


class RunningSummary:
    """Means over frames, pooled overlap scores and seconds per frame per stage, fed one frame at a time.

    ``add`` costs the same at the millionth frame as at the first and the
    object does not grow with the number of frames; ``value()`` is the
    summary of the frames added so far. Means skip non-finite values (a
    silhouette that is undefined on one frame); metrics that need ground
    truth are NaN, or absent, when no frame had any.
    """

    def __init__(self):
        self.frames = 0
        self._sums = dict.fromkeys(MEAN_KEYS, 0.0)
        self._counts = dict.fromkeys(MEAN_KEYS, 0)
        self._pooled = dict.fromkeys(COUNT_KEYS, 0)
        self._labelled = 0
        self._low_dice = 0
        self._seconds = dict.fromkeys(STAGES, 0.0)

    def add(self, metrics: dict[str, float], seconds: dict[str, float]) -> None:
        """Count one frame's per-frame metrics and stage seconds."""
        self.frames += 1
        for key, value in metrics.items():
            if key in COUNT_KEYS:
                continue
            self._sums.setdefault(key, 0.0)
            self._counts.setdefault(key, 0)
            if math.isfinite(value):
                self._sums[key] += value
                self._counts[key] += 1
        if "tp" in metrics:
            self._labelled += 1
            for key in COUNT_KEYS:
                self._pooled[key] += int(metrics[key])
            self._low_dice += metrics["dice"] < LOW_DICE
        for stage in STAGES:
            self._seconds[stage] += seconds.get(stage, 0.0)

    def value(self) -> dict[str, float]:
        """The summary of the frames so far."""
        summary = {f"{key}_mean": self._sums[key] / self._counts[key] if self._counts[key] else float("nan")
                   for key in self._sums}
        if self._labelled:
            summary.update(pooled_scores([self._pooled]))
            summary["frames_dice_below_0.3"] = float(self._low_dice)
        else:
            summary.update(dict.fromkeys(POOLED_KEYS, float("nan")))
        summary["n_frames"] = float(self.frames)
        for stage in STAGES:
            summary[f"seconds_{stage}"] = self._seconds[stage] / self.frames if self.frames else float("nan")
        summary["seconds_per_image"] = sum(summary[f"seconds_{stage}"] for stage in STAGES)
        return summary


def summarize(results) -> dict[str, float]:
    """The summary of finished results (anything with ``metrics`` and ``seconds``), as ``RunningSummary`` gives it."""
    running = RunningSummary()
    for result in results:
        running.add(result.metrics, result.seconds)
    return running.value()
