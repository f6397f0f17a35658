"""Seconds per image of each stage, next to the JPEG-decode floor.

``python -m src.benchmark [overrides] [+repeats=N]`` builds the configured
pipeline, runs it over the sampled frames ``repeats`` times (default 5) and
prints, per stage, the median over repeats of the mean seconds per image and
its ratio to the decode floor: decoding the frame at working size with PIL's
draft mode and nothing else. MLflow logging is not timed. The last row,
decoding at full size, is a reference for what draft decoding saves.
"""

from __future__ import annotations

import statistics
import time

import hydra
from omegaconf import DictConfig
from PIL import Image

from src.data import read_image
from src.pipeline import STAGES, evaluate
from src.run import build_stages


def decode_floor(dataset) -> float:
    """Mean seconds to decode one sampled frame at working size."""
    start = time.perf_counter()
    for image_id in dataset.image_ids:
        read_image(dataset.image_path(image_id), dataset.image_size(image_id))
    return (time.perf_counter() - start) / len(dataset.image_ids)


def full_decode(dataset) -> float:
    """Mean seconds to decode one sampled frame at full size: what draft-mode decoding saves."""
    start = time.perf_counter()
    for image_id in dataset.image_ids:
        with Image.open(dataset.image_path(image_id)) as image:
            image.convert("RGB")
    return (time.perf_counter() - start) / len(dataset.image_ids)


def measure(cfg: DictConfig, repeats: int) -> list[tuple[str, float, float]]:
    """Rows ``(stage, median s/image, min s/image)``: decode floor first, then stages, total, full-size decode."""
    stages = build_stages(cfg)
    stages["data"].cache_frames = False  # every repeat times real decoding
    samples: dict[str, list[float]] = {name: [] for name in ("decode floor", *STAGES, "total", "full decode")}
    for _ in range(repeats):
        samples["decode floor"].append(decode_floor(stages["data"]))
        samples["full decode"].append(full_decode(stages["data"]))
        _, summary = evaluate(stages["data"], stages["features"], stages["clusterer"], stages["postprocess"],
                              silhouette_sample=cfg.silhouette_sample, seed=cfg.seed,
                              threads=cfg.threads)
        for stage in STAGES:
            samples[stage].append(summary[f"seconds_{stage}"])
        samples["total"].append(summary["seconds_per_image"])
    return [(name, statistics.median(values), min(values)) for name, values in samples.items()]


def format_table(rows: list[tuple[str, float, float]], title: str) -> str:
    floor = rows[0][1]
    lines = [title, f"{'stage':<14}{'median s/img':>14}{'min s/img':>12}{'x decode':>10}"]
    lines += [f"{name:<14}{median:>14.4f}{low:>12.4f}{median / floor:>10.2f}" for name, median, low in rows]
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    repeats = int(cfg.get("repeats", 5))
    rows = measure(cfg, repeats)
    dataset = build_stages(cfg)["data"]
    title = (f"{dataset.source} data, {len(dataset)} images at scale {dataset.scale}, {repeats} repeats; "
             f"features={cfg.features._target_.rsplit('.', 1)[-1]} clusterer={cfg.clusterer._target_.rsplit('.', 1)[-1]}")
    print(format_table(rows, title))


if __name__ == "__main__":
    main()
