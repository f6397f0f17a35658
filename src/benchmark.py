"""Seconds per image of each stage, next to the decode floor.

``python -m src.benchmark [overrides] [+repeats=N]`` builds the configured
pipeline, runs it over the sampled frames ``repeats`` times (default 5) and
prints, per stage, the median over repeats of the mean seconds per image and
its ratio to the decode floor: decoding the frame at working size with PIL's
draft mode and nothing else. MLflow logging is not timed. The last row,
decoding at full size, is a reference for what draft decoding saves. Indented
rows under ``postprocess`` give each step of the post-processing chain, timed
by running the chain again on each frame's label map after the repeat (the
features stage runs again first, untimed, so each step finds what it finds
in a run); they add up to about the ``postprocess`` row.

With ``data=video data.path=FILE`` it times a run on the video as
``python -m src.run`` does it, end to end: decoding, the stages in
``workers`` processes and writing ``predictions/`` (to a temporary folder),
in frames per second, next to decoding the same frames and nothing else.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

import hydra
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from src.compose import build_stages, check_group_choices, check_override_keys
from src.data import read_image
from src.errors import LabError, check_range
from src.pipeline import evaluate
from src.postprocess import PostprocessChain
from src.predictions import PredictionWriter
from src.summary import STAGES
from src.urls import redact


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


def uncached(cfg: DictConfig) -> DictConfig:
    """``cfg`` with an image dataset's frame cache off, so every repeat times real decoding and real features,
    as a run's first pass does (a video is never cached)."""
    cfg = cfg.copy()
    if "cache_frames" in cfg.data:
        OmegaConf.update(cfg, "data.cache_frames", False)
    return cfg


def step_seconds(stages, results) -> dict[str, float]:
    """Mean seconds per frame of each step of a ``PostprocessChain`` (empty for another post-processing),
    from running it again on the label maps of ``results``."""
    seconds: dict[str, float] = {}
    if not isinstance(stages.postprocess, PostprocessChain) or not results:
        return seconds
    for result in results:
        # untimed: leaves what a run leaves for the steps (the frame's CIELAB, src.cielab)
        stages.features(result.frame)
        stages.postprocess(result.labels, result.frame.image, seconds=seconds)
    return {name: total / len(results) for name, total in seconds.items()}


def measure(cfg: DictConfig, repeats: int) -> list[tuple[str, float, float]]:
    """Rows ``(stage, median s/image, min s/image)``: decode floor first, then stages (the post-processing
    chain's steps indented after ``postprocess``), total, full-size decode."""
    stages = build_stages(uncached(cfg))
    samples: dict[str, list[float]] = {name: [] for name in ("decode floor", *STAGES, "total", "full decode")}
    steps: dict[str, list[float]] = {}
    for _ in range(repeats):
        samples["decode floor"].append(decode_floor(stages.data))
        samples["full decode"].append(full_decode(stages.data))
        results, summary = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess,
                                    silhouette_sample=cfg.silhouette_sample, seed=cfg.seed,
                                    threads=cfg.threads)
        for stage in STAGES:
            samples[stage].append(summary[f"seconds_{stage}"])
        samples["total"].append(summary["seconds_per_image"])
        for name, seconds in step_seconds(stages, results).items():
            steps.setdefault(name, []).append(seconds)
    rows = []
    for name, values in samples.items():
        rows.append((name, statistics.median(values), min(values)))
        if name == "postprocess":
            rows += [(f"  {step}", statistics.median(values), min(values)) for step, values in steps.items()]
    return rows


def run_once(stages, cfg: DictConfig) -> tuple[float, dict[str, float], list[dict[str, float]], float]:
    """One run as ``python -m src.run`` makes it, outputs written to a temporary folder and MLflow left out.

    Returns the wall-clock seconds per frame from the first frame decoded to
    the last output file closed, the run's summary, every frame's metrics in
    order, and the seconds per frame of writing: made ready beside the
    stages (``PredictionWriter.prepare``), then written in order.
    """
    dataset = stages.data
    metrics, writing = [], []
    with tempfile.TemporaryDirectory() as out_dir:
        start = time.perf_counter()
        with PredictionWriter(out_dir, dataset.full_size, write_masks=dataset.write_masks,
                              fps=getattr(dataset, "output_fps", None)) as writer:
            def sink(result):
                begun = time.perf_counter()
                writer.add(result)
                writing.append(result.seconds.get("prepare", 0.0) + time.perf_counter() - begun)
                metrics.append(result.metrics)

            _, summary = evaluate(dataset, stages.features, stages.clusterer, stages.postprocess,
                                  silhouette_sample=cfg.silhouette_sample, seed=cfg.seed, threads=cfg.threads,
                                  sink=sink, prepare=writer.prepare, workers=stages.workers, keep=False)
        seconds = (time.perf_counter() - start) / len(metrics)
    return seconds, summary, metrics, sum(writing) / len(writing)


def processor_seconds() -> float:
    """User and system seconds of every thread of this process and of its children that have ended (a run's
    workers, which it waits for)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def measure_run(cfg: DictConfig, repeats: int) -> list[tuple[str, float, float]]:
    """Rows ``(stage, median s/frame, min s/frame)`` of whole runs: decode floor, stages, writing, end to end,
    then the processor time of decoding and of the whole run.

    Stage rows are seconds of one worker's time per frame; with ``workers`` > 1
    they overlap. The end-to-end row is ``run_once``'s wall clock; frames are
    decoded anew in every repeat. The two ``processor`` rows are user and
    system seconds per frame of every thread and worker process: a video's
    decoder runs threads of its own, so one worker keeps more than one core
    busy, and ``end to end, processor`` divided by the cores is the least
    wall clock any number of workers can reach.
    """
    stages = build_stages(uncached(cfg))
    dataset = stages.data
    samples: dict[str, list[float]] = {name: [] for name in ("decode floor", *STAGES, "writing", "end to end",
                                                             "decode, processor", "end to end, processor")}
    for _ in range(repeats):
        before = processor_seconds()
        if hasattr(dataset, "stream"):
            start = time.perf_counter()
            decoded = sum(1 for _ in dataset.stream())
            # a damaged or truncated video, or a window with no frame: timing what is left would mislead
            if dataset.error or not decoded:
                raise LabError(dataset.error or f"data.path={str(dataset.path)!r} gave no frame to time")
            samples["decode floor"].append((time.perf_counter() - start) / decoded)
        else:
            decoded = len(dataset.image_ids)
            samples["decode floor"].append(decode_floor(dataset))
        samples["decode, processor"].append((processor_seconds() - before) / max(decoded, 1))
        before = processor_seconds()
        seconds, summary, metrics, writing = run_once(stages, cfg)
        samples["end to end, processor"].append((processor_seconds() - before) / len(metrics))
        samples["end to end"].append(seconds)
        samples["writing"].append(writing)
        for stage in STAGES:
            samples[stage].append(summary[f"seconds_{stage}"])
    return [(name, statistics.median(values), min(values)) for name, values in samples.items()]


def format_table(rows: list[tuple[str, float, float]], title: str) -> str:
    floor = rows[0][1]
    width = max(14, *(len(name) + 1 for name, _, _ in rows))
    lines = [title, f"{'stage':<{width}}{'median s/img':>14}{'min s/img':>12}{'x decode':>10}{'img/s':>9}"]
    lines += [f"{name:<{width}}{median:>14.4f}{low:>12.4f}{median / floor:>10.2f}"
              f"{f'{1 / median:.1f}' if median > 0 else '-':>9}" for name, median, low in rows]
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        report(cfg)
    except LabError as exc:
        raise SystemExit(redact(f"error: {exc}")) from None


def report(cfg: DictConfig) -> None:
    """Measure the configured pipeline and print the table."""
    repeats = cfg.get("repeats", 5)
    check_range("repeats", repeats, 1, integer=True)
    built = build_stages(cfg)
    dataset = built.data
    if hasattr(dataset, "stream"):
        rows = measure_run(cfg, repeats)
        frames = f"{dataset.path.name} (max_frames {dataset.max_frames}, stride {dataset.stride}) at scale " \
                 f"{dataset.scale_label}, workers={built.workers}, outputs written"
    else:
        rows = measure(cfg, repeats)
        frames = f"{dataset.source} data, {len(dataset)} images at scale {dataset.scale_label}"
    title = (f"{frames}, {repeats} repeats; features={cfg.features._target_.rsplit('.', 1)[-1]} "
             f"clusterer={cfg.clusterer._target_.rsplit('.', 1)[-1]}")
    print(format_table(rows, title))


if __name__ == "__main__":
    try:
        check_group_choices(sys.argv[1:])
        check_override_keys(sys.argv[1:])
    except LabError as exc:
        raise SystemExit(f"error: {exc}") from None
    main()
