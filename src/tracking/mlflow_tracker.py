"""MLflow logging: the only module that imports mlflow.

A run logs the resolved config as flattened params, per-image metrics as
steps and as a table, summary metrics, the per-iteration curves of an
optimising clusterer (``fit/<value>/<image>``), and artifacts: per-image mask,
overlay, cluster labels and components PNGs, the label maps an optimising
clusterer kept at chosen iterations (``fit_labels/<image>_iter<step>.png``),
the per-image metrics CSV and the config. A run that raises is ended FAILED (KILLED on Ctrl-C) with the
error as a tag, so no run is left RUNNING.
"""

from __future__ import annotations

import contextlib
import csv
import logging
import math
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import sqlalchemy.exc
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from PIL import Image

from src import viz

log = logging.getLogger(__name__)
PARENT_RUN_FILE = "mlflow_parent_run_id"


def flatten(tree, prefix: str = "") -> dict[str, str]:
    """Nested dicts and lists as ``{"a.b.0": "value"}``."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return {prefix: str(tree)}
    flat: dict[str, str] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


class MLflowTracker:
    """Logs one pipeline run to MLflow.

    Parameters
    ----------
    tracking_uri : str
        Store URI; the project default is a SQLite file inside ``mlruns/``.
    experiment_name : str
    artifact_location : str
        Folder for artifacts of a newly created experiment.
    run_name : str, optional
    log_images : bool, default True
        Log the per-image PNGs; the metrics table and config are always logged.
    """

    def __init__(self, tracking_uri: str, experiment_name: str = "football-players",
                 artifact_location: str | None = None, run_name: str | None = None, log_images: bool = True):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_location = artifact_location
        self.run_name = run_name
        self.log_images = log_images

    def _experiment_id(self, attempts: int = 5) -> str:
        for attempt in range(1, attempts + 1):
            try:
                return self._find_or_create_experiment()
            except sqlalchemy.exc.IntegrityError:
                # processes opening an empty database server together race to create MLflow's tables
                if attempt == attempts:
                    raise
                time.sleep(0.5 * attempt)

    def _find_or_create_experiment(self) -> str:
        mlflow.set_tracking_uri(self.tracking_uri)
        client = MlflowClient()
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.artifact_location:
            Path(self.artifact_location).mkdir(parents=True, exist_ok=True)
            location = Path(self.artifact_location).resolve().as_uri()
        try:
            return client.create_experiment(self.experiment_name, artifact_location=location)
        except mlflow.exceptions.MlflowException:
            # another process created it in between
            return client.get_experiment_by_name(self.experiment_name).experiment_id

    @contextlib.contextmanager
    def run(self, params: dict, tags: dict | None = None, parent_run_id: str | None = None, *,
            fail_parent: bool = True, killed_by: tuple[type[BaseException], ...] = (KeyboardInterrupt,)):
        """Start a run, yield its id, and end it FINISHED, FAILED or KILLED.

        An exception of a ``killed_by`` type (Ctrl-C, a pruned trial) ends the
        run KILLED, any other FAILED; with ``fail_parent`` a failure also fails
        the parent run (a plain multirun), while an Optuna study judges its
        failed trials itself.
        """
        experiment_id = self._experiment_id()
        all_tags = dict(tags or {})
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        active = mlflow.start_run(experiment_id=experiment_id, run_name=self.run_name, tags=all_tags)
        try:
            mlflow.log_params(flatten(params))
            yield active.info.run_id
        except BaseException as exc:
            killed = isinstance(exc, killed_by)
            mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:5000])
            mlflow.end_run(status="KILLED" if killed else "FAILED")
            if parent_run_id and fail_parent and not killed:
                self.end_parent(parent_run_id, "FAILED")
            raise
        mlflow.end_run(status="FINISHED")

    def log_results(self, results, summary: dict[str, float], config_yaml: str,
                    extra_files: dict[str, str] | None = None) -> None:
        """Log summary and per-image metrics and the artifacts of the active run."""
        mlflow.log_metrics({k: v for k, v in summary.items() if math.isfinite(v)})
        now = int(time.time() * 1000)
        step_metrics = [Metric(f"image/{key}", value, now, step)
                        for step, result in enumerate(results) for key, value in result.metrics.items()
                        if math.isfinite(value)]
        # an optimising clusterer's curve per image, one metric per image and value, stepped by iteration
        step_metrics += [Metric(f"fit/{key}/{result.frame.stem}", value, now, iteration)
                         for result in results for iteration, values in enumerate(result.fit_history, 1)
                         for key, value in values.items() if math.isfinite(value)]
        client = MlflowClient()
        run_id = mlflow.active_run().info.run_id
        for start in range(0, len(step_metrics), 1000):
            client.log_batch(run_id, metrics=step_metrics[start:start + 1000])
        rows = [{"image_id": r.frame.image_id, "file_name": r.frame.file_name, **r.metrics,
                 **{f"seconds_{k}": v for k, v in r.seconds.items()}} for r in results]
        mlflow.log_table({key: [row.get(key) for row in rows] for key in rows[0]}, "per_image_metrics.json")
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            with open(tmp / "per_image_metrics.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            (tmp / "config").mkdir()
            (tmp / "config" / "config.yaml").write_text(config_yaml)
            for name, text in (extra_files or {}).items():
                (tmp / "config" / name).write_text(text)
            if self.log_images:
                _write_images(tmp, results)
            mlflow.log_artifacts(str(tmp))

    def set_tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """One metric of the active run (a training curve steps it by epoch)."""
        mlflow.log_metric(key, value, step=step)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})

    def log_folder(self, folder: str | Path, artifact_path: str) -> None:
        """A folder (e.g. a trained model's ``model.json`` and ``weights.pt``) as artifacts of the active run."""
        mlflow.log_artifacts(str(folder), artifact_path)

    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        mlflow.log_image(np.ascontiguousarray(image), artifact_file=artifact_file)

    def download(self, uri: str) -> str:
        """A local copy of artifacts named by a ``runs:/<run_id>/<path>`` URI."""
        mlflow.set_tracking_uri(self.tracking_uri)
        return mlflow.artifacts.download_artifacts(artifact_uri=uri)

    def start_parent(self, name: str, tags: dict | None = None) -> str:
        """Create a RUNNING parent run for a sweep and return its id."""
        experiment_id = self._experiment_id()
        run = MlflowClient().create_run(experiment_id, run_name=name, tags=tags or {})
        return run.info.run_id

    def end_parent(self, run_id: str, status: str = "FINISHED") -> None:
        """End a parent run unless it already ended; FAILED sticks over FINISHED."""
        mlflow.set_tracking_uri(self.tracking_uri)
        client = MlflowClient()
        current = client.get_run(run_id).info.status
        if current == "RUNNING" or (current == "FINISHED" and status == "FAILED"):
            client.set_terminated(run_id, status=status)

    def log_study(self, run_id: str, *, params: dict[str, str], metrics: dict[str, float],
                  tables: dict[str, dict[str, list]], figures: dict, tags: dict[str, str] | None = None) -> None:
        """Log a sweep's summary into its parent run: params, metrics, tags, tables (JSON) and figures (PNG)."""
        mlflow.set_tracking_uri(self.tracking_uri)
        client = MlflowClient()
        client.log_batch(run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                         tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
                         metrics=[Metric(k, v, int(time.time() * 1000), 0) for k, v in metrics.items()
                                  if math.isfinite(v)])
        for name, table in tables.items():
            client.log_table(run_id, table, name)
        for name, figure in figures.items():
            client.log_figure(run_id, figure, name)

    def run_info(self, run_id: str) -> dict:
        """Status, params, metrics and tags of a run (for tests and reports)."""
        mlflow.set_tracking_uri(self.tracking_uri)
        run = MlflowClient().get_run(run_id)
        return {"status": run.info.status, "params": run.data.params, "metrics": run.data.metrics,
                "tags": run.data.tags, "artifact_uri": run.info.artifact_uri}


def _write_images(folder: Path, results) -> None:
    for sub in ("masks", "overlays", "clusters", "components"):
        (folder / sub).mkdir()
    for result in results:
        stem, player, frame = result.frame.stem, result.player, result.frame
        pictures = {
            "masks": viz.mask_image(player.mask),
            "overlays": viz.overlay(frame.image, player.mask, frame.mask),
            "clusters": viz.label_image(result.labels),
            "components": viz.components_image(frame.image, player.components, player.centroids),
        }
        for sub, picture in pictures.items():
            Image.fromarray(np.ascontiguousarray(picture)).save(folder / sub / f"{stem}.png")
        for iteration, labels in result.fit_snapshots.items():
            (folder / "fit_labels").mkdir(exist_ok=True)
            Image.fromarray(viz.label_image(labels)).save(folder / "fit_labels" / f"{stem}_iter{iteration:04d}.png")


__all__ = ["MLflowTracker", "PARENT_RUN_FILE", "flatten"]
