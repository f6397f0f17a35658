"""Hydra entry point: ``python -m src.run [overrides]``, or ``-m`` for a sweep.

Builds every stage from config, checks it before any work, runs the pipeline
over the sampled frames, logs to MLflow and returns the configured objective.
"""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.compose import (
    build_stages,
    check_group_choices,
    check_override_keys,
    multirun_dir,
    objective_names,
    parent_run_id,
)
from src.errors import LabError
from src.predictions import PredictionWriter, coco_scores
from src.signals import stop_signals, stops_as_interrupts
from src.sweep.parent_run import parents_ended_on_failure
from src.urls import redact

log = logging.getLogger("src.run")


def run(cfg: DictConfig) -> float | tuple[float, ...] | str:
    """Run one configuration end to end and return ``summary[cfg.objective]`` (NaN if undefined).

    A list of objectives returns a tuple, in order, for a multi-objective sweep;
    a trial its sweep's pruner stopped returns ``src.sweep.trial.PRUNED``.
    """
    if cfg.get("optuna_trial") is None:
        summary, _ = run_and_log(cfg)
    else:
        import optuna

        from src.sweep.trial import PRUNED

        try:
            summary, _ = run_and_log(cfg)
        except optuna.TrialPruned as exc:
            log.info("%s", exc)
            return PRUNED
    values = tuple(summary[name] if math.isfinite(summary[name]) else float("nan")
                   for name in objective_names(cfg.objective))
    return values[0] if len(values) == 1 else values


def run_and_log(cfg: DictConfig) -> tuple[dict[str, float], str]:
    """Run one configuration end to end, log it to MLflow; returns the summary and the run id."""
    from src.frame_table import FrameTable
    from src.pipeline import evaluate

    stages = build_stages(cfg)
    trial = None
    if cfg.get("optuna_trial") is not None:
        from src.sweep.trial import study_trial

        trial = study_trial(cfg)
    dataset, tracker = stages.data, stages.logger
    parent_id = parent_run_id(multirun_dir())
    params = OmegaConf.to_container(cfg, resolve=True)
    # a backbone that a feature set uses is logged under that feature set's params
    for unused in ("paths", "backbone"):
        params.pop(unused, None)
    tags = {"dataset": dataset.source, "data.root": str(dataset.root),
            "objective": ",".join(objective_names(cfg.objective)), "workers": str(stages.workers),
            **getattr(stages.features, "tags", {})}
    on_result, killed_by = None, (KeyboardInterrupt,)
    if trial is not None:
        import optuna

        objective = objective_names(cfg.objective)[0]
        tags.update({"optuna.study": trial.study_name, "optuna.trial": str(trial.number)})

        def on_result(frames_done, running):
            if frames_done % trial.report_every == 0:
                trial.report(running.value()[objective], frames_done)

        killed_by = (KeyboardInterrupt, optuna.TrialPruned)
    job = _job_number()
    if job is not None:
        tags["sweep.job"] = str(job)
    with tracker.run(params, tags=tags, parent_run_id=parent_id, fail_parent=trial is None,
                     killed_by=killed_by, run_name=cfg.logger.run_name or run_name(cfg)) as run_id:
        streaming = hasattr(dataset, "stream")
        if streaming:
            tracker.log_frames(f"video {dataset.path.name} at scale {dataset.scale_label}", str(dataset.path),
                               [{"video": dataset.path.name, "start": str(dataset.start), "end": str(dataset.end),
                                 "stride": str(dataset.stride), "max_frames": str(dataset.max_frames)}])
        else:
            tracker.log_frames(f"{dataset.source}: {len(dataset)} frames at scale {dataset.scale_label}",
                               str(dataset.root), [{"image_id": str(i), "file_name": dataset.image_path(i).name}
                                                   for i in dataset.image_ids])
        started = time.perf_counter()
        labelled = []
        # each result goes to disk as it comes and is not kept, so memory does not grow with the frames
        with _output_dir() as out_dir, FrameTable() as table, tempfile.TemporaryDirectory() as picture_dir:
            pictures = tracker.pictures(Path(picture_dir), images=not streaming)
            with PredictionWriter(out_dir, dataset.full_size, write_masks=dataset.write_masks,
                                  fps=getattr(dataset, "output_fps", None)) as writer:
                def prepare(result):
                    return writer.prepare(result), pictures.prepare(result)

                def sink(result):
                    outputs, encoded = result.prepared
                    writer.add(replace(result, prepared=outputs))
                    table.add(result)
                    pictures.add(result, encoded)
                    if not streaming and dataset.labelled(result.frame.image_id):
                        labelled.append(result.frame.image_id)

                _, summary = evaluate(dataset, stages.features, stages.clusterer, stages.postprocess,
                                      silhouette_sample=cfg.silhouette_sample, seed=cfg.seed, threads=cfg.threads,
                                      on_result=on_result, sink=sink, prepare=prepare,
                                      workers=stages.workers, keep=False)
            frames_per_second = len(table) / (time.perf_counter() - started)
            if labelled:
                summary.update(coco_scores(dataset.coco, labelled, writer.final / "coco_results.json"))
            tracker.log_results(summary, table, OmegaConf.to_yaml(cfg, resolve=True), _hydra_files(),
                                folders={"predictions": writer.final}, pictures=pictures)
        if getattr(dataset, "error", None):
            raise LabError(dataset.error)
        if trial is not None:
            trial.record(summary, run_id)
    log.info("dataset: %s (%s), %d images at scale %s", dataset.source, dataset.root, int(summary["n_frames"]),
             dataset.scale_label)
    if math.isfinite(summary["dice_mean"]):
        log.info("mean Dice %.4f | mean IoU %.4f | pooled Dice %.4f (pixel precision %.3f, recall %.3f) | %.3f s/image",
                 summary["dice_mean"], summary["iou_mean"], summary["dice_pooled"], summary["precision_pooled"],
                 summary["recall_pooled"], summary["seconds_per_image"])
    else:
        log.info("no ground truth: %.1f components per frame | silhouette %.3f | %.3f s/image in the stages",
                 summary["n_components_mean"], summary["silhouette_mean"], summary["seconds_per_image"])
    log.info("%d frames at %.1f frames/s, decoding to written outputs", summary["n_frames"], frames_per_second)
    log.info("MLflow run %s in %s (experiment %r)", run_id, redact(tracker.tracking_uri), tracker.experiment_name)
    return summary, run_id


# overrides that say where things are, not what was run: left out of run names
_PLACE_KEYS = ("data.root", "paths.", "hydra.", "logger.", "optuna_trial")


def run_name(cfg: DictConfig) -> str:
    """What a run is, for the MLflow runs table.

    The named experiment, or ``clusterer · features · postprocess``, followed
    by the command line's other overrides (``kmeans · color_position ·
    players clusterer.n_clusters=8``). Without Hydra's runtime (a composed
    config) the stages describe themselves: ``KMeans · color+position ·
    field+enclosed+thin+small``.
    """
    try:
        runtime = HydraConfig.get()
        choices, overrides = dict(runtime.runtime.choices), list(runtime.overrides.task)
    except ValueError:
        choices, overrides = _choices_from(cfg), []
    experiment = choices.get("experiment")
    groups = ("clusterer", "features", "postprocess")
    head = experiment if experiment not in (None, "null") else " · ".join(str(choices.get(g)) for g in groups)
    shown = [o for o in overrides if not o.startswith(_PLACE_KEYS)
             and o.split("=", 1)[0].lstrip("+~") not in (*groups, "experiment")]
    return redact(" ".join([head, *shown]))[:250]


def _choices_from(cfg: DictConfig) -> dict[str, str]:
    """Group "choices" read off the stages themselves: clusterer class, feature blocks, post-processing steps."""
    clusterer = str(cfg.clusterer.get("_target_", "?")).rsplit(".", 1)[-1].removesuffix("Clusterer")
    blocks = cfg.features.get("blocks") or {}
    steps = cfg.postprocess.get("steps") or {}
    return {"clusterer": clusterer,
            "features": "+".join(name for name, block in blocks.items() if block is not None) or "features",
            "postprocess": "+".join(name for name, step in steps.items() if step is not None) or "postprocess"}


def _job_number() -> int | None:
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return None
    return int(hydra_cfg.job.num) if hydra_cfg.mode == RunMode.MULTIRUN else None


@contextmanager
def _output_dir():
    """This job's Hydra output folder, where its predictions stay; a temporary one outside Hydra."""
    try:
        folder = Path(HydraConfig.get().runtime.output_dir)
    except ValueError:
        folder = None
    if folder is not None:
        yield folder
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _hydra_files() -> dict[str, str]:
    """The Hydra folder of this job (config, overrides), when Hydra wrote one."""
    try:
        folder = Path(HydraConfig.get().runtime.output_dir) / HydraConfig.get().output_subdir
    except (ValueError, TypeError):
        return {}
    return {f"hydra_{p.name}": p.read_text() for p in folder.glob("*.yaml")} if folder.is_dir() else {}


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    try:
        with stops_as_interrupts():
            return run(cfg)
    except LabError as exc:
        if multirun_dir() is not None:
            # in a sweep the job's exception is the sweeper's record of a failed trial
            log.error("error: %s", redact(str(exc)))
            raise
        raise SystemExit(redact(f"error: {exc}")) from None


if __name__ == "__main__":
    try:
        check_group_choices(sys.argv[1:])
        check_override_keys(sys.argv[1:])
    except LabError as exc:
        raise SystemExit(f"error: {exc}") from None
    with stop_signals("src.run"), parents_ended_on_failure():
        main()
