"""Runs the configurations below on the real frames and writes experiments/REPORT.md.

Usage: ``FOOTBALL_DATA=../shared/football .venv/bin/python experiments/foundation_report.py``
Every number in the report comes from these runs; each is also an MLflow run.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import date
from pathlib import Path

from hydra import compose, initialize_config_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.benchmark import format_table, measure  # noqa: E402
from src.run import run_and_log  # noqa: E402

ROWS = [
    ("default: k-means (k=12) on Lab + position, field post-processing, scale 8", []),
    ("same, scale 4", ["data.scale=4"]),
    ("same, scale 16", ["data.scale=16"]),
    ("k-means on Lab only (position weight 0)", ["features=lab"]),
    ("k-means on HSV + position", ["features=hsv"]),
    ("k-means on Lab + position + texture", ["features=color_texture"]),
    ("baseline: keep every small cluster (no field rule)", ["postprocess=small_clusters"]),
] + [(f"clusterer `{name}`, default post-processing", [f"clusterer={name}"])
     for name in ("minibatch_kmeans", "gmm", "dbscan", "hdbscan", "meanshift", "slic", "felzenszwalb",
                  "agglomerative")]


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=["logger.log_images=false", *overrides])


def main() -> None:
    if not os.environ.get("FOOTBALL_DATA"):
        raise SystemExit("error: FOOTBALL_DATA is not set; point it at the real frames (../shared/football)")
    lines = [
        "# Foundation report",
        "",
        f"Written by `experiments/foundation_report.py` on {date.today()} ({platform.node()}, "
        f"{os.cpu_count()} cores). 50 real frames sampled with seed 0 from `FOOTBALL_DATA`.",
        "",
        "| configuration | overrides | mean Dice | mean IoU | pooled Dice | pooled IoU | components / GT blobs "
        "| silhouette | s/image | MLflow run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for title, overrides in ROWS:
        summary, run_id = run_and_log(compose_cfg(overrides))
        lines.append(
            f"| {title} | `{' '.join(overrides) or '(none)'}` | {summary['dice_mean']:.3f} | {summary['iou_mean']:.3f} "
            f"| {summary['dice_pooled']:.3f} | {summary['iou_pooled']:.3f} "
            f"| {summary['n_components_mean']:.1f} / {summary['n_instances_mean']:.1f} "
            f"| {summary['silhouette_mean']:.3f} | {summary['seconds_per_image']:.3f} | `{run_id[:8]}` |")
    rows = measure(compose_cfg([]), repeats=5)
    lines += ["", "## Seconds per image per stage (default experiment, scale 8)", "",
              "Median over 5 repeats of the mean over 50 frames; `x decode` is the ratio to decoding the JPEG "
              "at working size (PIL draft), the floor of any run. Same as `make benchmark`.", "", "```",
              format_table(rows, "default experiment"), "```", ""]
    (ROOT / "experiments" / "REPORT.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
