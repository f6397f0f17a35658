"""Hydra entry point: ``python -m src.run [overrides]``, or ``-m`` for a sweep.

Builds every stage from config, checks it before any work, runs the pipeline
over the sampled frames, logs to MLflow and returns the configured objective.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.errors import LabError, check_choice, check_range
from src.predictions import PredictionWriter, coco_scores
from src.signals import stop_signals, stops_as_interrupts
from src.tracking import PARENT_RUN_FILE
from src.urls import redact

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
# the first of a list of folders that exists (null if none): where the real frames are found
OmegaConf.register_new_resolver(
    "first_folder", lambda folders: next((str(Path(f).resolve()) for f in folders if Path(f).is_dir()), None),
    replace=True)
log = logging.getLogger("src.run")


def build(node: DictConfig, option: str):
    """Instantiate a config node from its ``_target_``; bad values become one-line LabErrors."""
    try:
        return hydra.utils.instantiate(node, _convert_="partial")
    except hydra.errors.InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, LabError):
            raise cause from None
        raise LabError(f"{option}: {str(cause or exc).splitlines()[0]}") from None


def load_config(overrides: list[str], config_name: str = "config") -> DictConfig:
    """The root config composed with ``overrides``, for commands outside ``@hydra.main`` (no output folder)."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    except Exception as exc:  # Hydra's override and config errors come in several types
        raise LabError(f"overrides {' '.join(overrides)!r}: {' '.join(str(exc).split())[:300]}") from None


def build_stages(cfg: DictConfig) -> dict:
    """Build and check data, features, clusterer, postprocess and tracker; nothing runs yet."""
    from src.pipeline import SUMMARY_KEYS

    for name in objective_names(cfg):
        check_choice("objective", name, SUMMARY_KEYS)
    check_range("silhouette_sample", cfg.silhouette_sample, 2, integer=True)
    if cfg.threads is not None:
        check_range("threads", cfg.threads, 1, integer=True)
    check_range("workers", cfg.workers, 1, integer=True)
    stages = {"logger": build(cfg.logger, "logger")}
    features = with_local_artifacts(cfg.features, stages["logger"])
    stages.update({"features": build(features, "features"), "clusterer": build(cfg.clusterer, "clusterer"),
                   "postprocess": build(cfg.postprocess, "postprocess")})
    stages["data"] = build(cfg.data, "data")
    check_input = getattr(stages["clusterer"], "check_input", None)
    if check_input is not None:
        dataset = stages["data"]
        # a stream's frames are not known before decoding; they all have the stream's size
        sizes = [dataset.image_size(i) for i in dataset.image_ids] or [dataset.image_size()]
        check_input(min(w * h for w, h in sizes))
    stages["logger"].check()
    return stages


def with_local_artifacts(node: DictConfig, tracker) -> DictConfig:
    """A copy of ``node`` whose ``runs:/<run_id>/<path>`` strings (a trained model) are local folders."""
    container = OmegaConf.to_container(node, resolve=True)

    def localize(value):
        if isinstance(value, dict):
            return {key: localize(item) for key, item in value.items()}
        if isinstance(value, list):
            return [localize(item) for item in value]
        if isinstance(value, str) and value.startswith("runs:/"):
            try:
                return tracker.download(value)
            except Exception as exc:  # mlflow raises several types for a run or path it cannot find
                raise LabError(f"{value!r} cannot be downloaded from {redact(tracker.tracking_uri)} "
                               f"({type(exc).__name__}); check the run id and path") from None
        return value

    return OmegaConf.create(localize(container))


def _sweep_parent_file() -> Path | None:
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return None
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(hydra_cfg.sweep.dir) / PARENT_RUN_FILE


def objective_names(cfg: DictConfig) -> list[str]:
    """The configured objective as a list: one summary key, or several for a multi-objective sweep."""
    return [cfg.objective] if isinstance(cfg.objective, str) else list(cfg.objective)


def run(cfg: DictConfig) -> float | tuple[float, ...] | str:
    """Run one configuration end to end and return ``summary[cfg.objective]`` (NaN if undefined).

    A list of objectives returns a tuple, in order, for a multi-objective sweep;
    a trial its sweep's pruner stopped returns ``src.sweeper.PRUNED``.
    """
    if cfg.get("optuna_trial") is None:
        summary, _ = run_and_log(cfg)
    else:
        import optuna

        from src.sweeper import PRUNED

        try:
            summary, _ = run_and_log(cfg)
        except optuna.TrialPruned as exc:
            log.info("%s", exc)
            return PRUNED
    values = tuple(summary[name] if math.isfinite(summary[name]) else float("nan") for name in objective_names(cfg))
    return values[0] if len(values) == 1 else values


def study_trial(cfg: DictConfig):
    """The job's handle on its Optuna trial when the project's sweeper launched it, else None."""
    if cfg.get("optuna_trial") is None:
        return None
    from src.sweeper import StudyTrial

    sweeper = HydraConfig.get().sweeper
    pruner = None if sweeper.get("pruner") is None else build(sweeper.pruner, "hydra.sweeper.pruner")
    return StudyTrial(sweeper.storage, sweeper.study_name, int(cfg.optuna_trial), pruner=pruner,
                      report_every=sweeper.report_every)


def run_and_log(cfg: DictConfig) -> tuple[dict[str, float], str]:
    """Run one configuration end to end, log it to MLflow; returns the summary and the run id."""
    from src.pipeline import evaluate, summarize

    stages = build_stages(cfg)
    trial = study_trial(cfg)
    dataset, tracker = stages["data"], stages["logger"]
    parent_file = _sweep_parent_file()
    parent_run_id = parent_file.read_text().strip() if parent_file and parent_file.is_file() else None
    params = OmegaConf.to_container(cfg, resolve=True)
    # a backbone that a feature set uses is logged under that feature set's params
    for unused in ("paths", "backbone"):
        params.pop(unused, None)
    tags = {"dataset": dataset.source, "data.root": str(dataset.root), "objective": ",".join(objective_names(cfg)),
            **getattr(stages["features"], "tags", {})}
    on_result, killed_by = None, (KeyboardInterrupt,)
    if trial is not None:
        import optuna

        objective = objective_names(cfg)[0]
        tags.update({"optuna.study": trial.study_name, "optuna.trial": str(trial.number)})

        def on_result(results):
            if len(results) % trial.report_every == 0:
                trial.report(summarize(results)[objective], len(results))

        killed_by = (KeyboardInterrupt, optuna.TrialPruned)
    job = _job_number()
    if job is not None:
        tags["sweep.job"] = str(job)
    with tracker.run(params, tags=tags, parent_run_id=parent_run_id, fail_parent=trial is None,
                     killed_by=killed_by, run_name=cfg.logger.run_name or run_name(cfg)) as run_id:
        streaming = hasattr(dataset, "stream")
        if streaming:
            tracker.log_frames(f"video {dataset.path.name} at scale {dataset.scale}", str(dataset.path),
                               [{"video": dataset.path.name, "start": str(dataset.start), "end": str(dataset.end),
                                 "stride": str(dataset.stride), "max_frames": str(dataset.max_frames)}])
        else:
            tracker.log_frames(f"{dataset.source}: {len(dataset)} frames at scale {dataset.scale}",
                               str(dataset.root), [{"image_id": str(i), "file_name": dataset.image_path(i).name}
                                                   for i in dataset.image_ids])
        started = time.perf_counter()
        with _output_dir() as out_dir:
            with PredictionWriter(out_dir, dataset.full_size, write_masks=dataset.write_masks,
                                  fps=getattr(dataset, "output_fps", None)) as writer:
                results, summary = evaluate(dataset, stages["features"], stages["clusterer"], stages["postprocess"],
                                            silhouette_sample=cfg.silhouette_sample, seed=cfg.seed,
                                            threads=cfg.threads, on_result=on_result, sink=writer.add,
                                            prepare=writer.prepare, workers=cfg.workers)
            frames_per_second = len(results) / (time.perf_counter() - started)
            labelled = [r.frame.image_id for r in results if dataset.labelled(r.frame.image_id)]
            if labelled:
                summary.update(coco_scores(dataset.coco, labelled, writer.final / "coco_results.json"))
            tracker.log_results(results, summary, OmegaConf.to_yaml(cfg, resolve=True), _hydra_files(),
                                folders={"predictions": writer.final}, images=not streaming)
        if getattr(dataset, "error", None):
            raise LabError(dataset.error)
        if trial is not None:
            trial.record(summary, run_id)
    log.info("dataset: %s (%s), %d images at scale %d", dataset.source, dataset.root, len(results), dataset.scale)
    if math.isfinite(summary["dice_mean"]):
        log.info("mean Dice %.4f | mean IoU %.4f | pooled Dice %.4f | %.3f s/image",
                 summary["dice_mean"], summary["iou_mean"], summary["dice_pooled"], summary["seconds_per_image"])
    else:
        log.info("no ground truth: %.1f components per frame | silhouette %.3f | %.3f s/image in the stages",
                 summary["n_components_mean"], summary["silhouette_mean"], summary["seconds_per_image"])
    log.info("%d frames at %.1f frames/s, decoding to written outputs", len(results), frames_per_second)
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


class SweepParentRun(Callback):
    """Groups the jobs of a multirun under one MLflow parent run.

    The parent's id is written to the sweep folder, where every job (in this
    process or another) finds it; the parent ends FINISHED with the sweep, or
    FAILED as soon as a job fails.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        tracker = build(config.logger, "logger")
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        swept = " ".join(f"{key}={value}" for key, value in swept_overrides(config).items())
        run_id = tracker.start_parent(f"sweep {swept or sweep_dir.name}", tags={"sweep_dir": str(sweep_dir)})
        (sweep_dir / PARENT_RUN_FILE).write_text(run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        parent_file = Path(config.hydra.sweep.dir) / PARENT_RUN_FILE
        if parent_file.is_file():
            tracker = build(config.logger, "logger")
            run_id = parent_file.read_text().strip()
            try:
                if config.hydra.sweeper.get("_target_", "").endswith("BasicSweeper"):
                    # an Optuna study logs its own summary; a plain multirun gets its jobs' results here
                    from src.pipeline import lower_is_better

                    objective = objective_names(config)[0]
                    tracker.log_jobs_summary(run_id, objective, swept_overrides(config),
                                             maximize=not lower_is_better(objective))
            finally:
                tracker.end_parent(run_id, "FINISHED")


def swept_overrides(config: DictConfig) -> dict[str, str]:
    """The command line's sweeps of a multirun, ``{"clusterer.n_clusters": "8,12,16"}``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    return {o.get_key_element(): o.input_line.split("=", 1)[1] for o in parsed if o.is_sweep_override()}


class RedactSavedConfig(Callback):
    """Masks credentials of store URLs in the config files Hydra saved for a job (``.hydra/*.yaml``)."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if config.hydra.output_subdir is None:
            return
        folder = Path(config.hydra.runtime.output_dir) / config.hydra.output_subdir
        for path in folder.glob("*.yaml"):
            text = path.read_text()
            if redact(text) != text:
                partial = path.with_name(f".{path.name}.tmp")
                partial.write_text(redact(text))
                partial.replace(path)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | tuple[float, ...]:
    try:
        with stops_as_interrupts():
            return run(cfg)
    except LabError as exc:
        if _sweep_parent_file() is not None:
            # in a sweep the job's exception is the sweeper's record of a failed trial
            log.error("error: %s", redact(str(exc)))
            raise
        raise SystemExit(redact(f"error: {exc}")) from None


if __name__ == "__main__":
    with stop_signals("src.run"):
        main()
