"""MLflow logging: the only module that imports mlflow.

A run logs the resolved config as flattened params, per-image metrics as
steps and as a table, summary metrics, the per-iteration curves of an
optimising clusterer (``fit/<value>/<image>``), and artifacts: per-image mask,
overlay, cluster labels and components PNGs, the label maps an optimising
clusterer kept at chosen iterations (``fit_labels/<image>_iter<step>.png``),
the per-image metrics CSV and the config. A run that raises is ended FAILED (KILLED on Ctrl-C or
SIGTERM) with the error as a tag; artifacts are logged all or none. Each run is tagged with its process
(``lab.process``), so a run whose process died without ending it (``kill -9``, power loss) is recognised
and ended FAILED by the next run or by ``python -m src.cleanup``. Credentials in URLs never
reach a param, tag or artifact.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import mlflow
import numpy as np
import sqlalchemy.exc
from mlflow.entities import Metric, Param, RunTag
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient
from PIL import Image

from src import viz
from src.errors import LabError, check_bool, check_range
from src.processes import is_dead, process_token
from src.signals import interrupted
from src.sqlite_stores import use_write_ahead_log
from src.urls import make_sqlite_folder, redact, store_lock

log = logging.getLogger(__name__)
# MLflow writes the address of a run on a tracking server straight to stdout, a token in the URL and all,
# past the logging filters that mask it; the run's address is in the log line of src.run, masked
os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
PARENT_RUN_FILE = "mlflow_parent_run_id"
# the tag naming the process that owns a run (``host:pid:start``)
PROCESS_TAG = "lab.process"
# beyond this many frames (a video) per-image metrics go to per_image_metrics.csv only, not to metric steps
MAX_STEP_IMAGES = 1000
# the landing page of the MLflow UI for an experiment: its runs, not the GenAI overview
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
# the run page's description: what the diagnostics beside Dice mean
METRIC_GLOSSARY = """Metrics of this run (means over frames unless pooled):

- dice_mean, iou_mean: overlap of the predicted player mask with the ground truth (1 = perfect).
- dice_pooled, iou_pooled: the same over all frames' pixels at once.
- oracle_dice_mean: a diagnostic, not a result. Each cluster is given to the players if most of its pixels are
  players. It measures whether the clusters separate players at all; whole-cluster assignment is coarse, so it is
  often far below dice_mean, which selects regions after post-processing.
- hungarian_miou_mean: clusters matched one-to-one to {players, background}; mean IoU of the matched pairs.
- blob_recall_mean: share of annotated players the mask covers at least half of (a dropped player shows here).
- frames_dice_below_0.3: how many frames score a Dice below 0.3, frames that lost most of their players.
- coco_segm_ap, coco_segm_ap50, coco_segm_ar100: COCO segmentation AP, AP at IoU 0.5 and AR (100 detections) of the
  player components (predictions/coco_results.json) against the annotations.
- region_oracle_dice_mean: a diagnostic. The Dice of keeping exactly the connected regions of each cluster that are
  mostly player: the ceiling of any rule that selects regions. Far above dice_mean, the selection loses players;
  close to it, the clustering does.
- silhouette_mean, inertia_mean: unsupervised quality of the clustering on its own features (no ground truth).
- n_clusters_mean, n_components_mean vs n_instances_mean: clusters found, player blobs found, blobs annotated.
- seconds_<stage>: seconds per frame of each stage.
- outline_error_share_mean: share of the wrong pixels next to the other mask (a false positive touching a player, a
  miss touching the prediction): near 1 the outlines are off, near 0 whole players are missed or added.
- precision_pooled, recall_pooled: share of the predicted pixels that are players, and of the players' pixels
  predicted, over all frames: a mask too big loses precision, one that misses players or their edges recall.
"""
# stores this process has opened (created or migrated) under the store lock
_OPENED: set[str] = set()
# stores whose runs of dead processes this process has ended: once is enough, as its own runs end themselves
_CLEANED: set[str] = set()


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
    image_steps : bool, default True
        Also log each frame's metrics as steps of ``image/<metric>`` (runs of at
        most ``MAX_STEP_IMAGES`` frames), for per-frame charts. Writing them
        costs a 50-frame run more than scoring its frames' COCO AP, so a sweep's
        trials, compared by their summary metrics, leave them out.
    image_width : int, default 960
        Overlays and component pictures are enlarged to at least this width,
        so they read well in the MLflow UI.
    """

    def __init__(self, tracking_uri: str, experiment_name: str = "football-players",
                 artifact_location: str | None = None, run_name: str | None = None, log_images: bool = True,
                 image_width: int = 960, image_steps: bool = True):
        check_range("image_width", image_width, 1, integer=True)
        check_bool("log_images", log_images)
        check_bool("image_steps", image_steps)
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.artifact_location = artifact_location
        self.run_name = run_name
        self.log_images = log_images
        self.image_width = image_width
        self.image_steps = image_steps

    def _client(self) -> MlflowClient:
        """A client of this tracker's store; the first one in a process opens the store under its lock."""
        mlflow.set_tracking_uri(self.tracking_uri)
        use_write_ahead_log()
        if self.tracking_uri not in _OPENED:
            make_sqlite_folder(self.tracking_uri)
            with store_lock(self.tracking_uri):
                MlflowClient().search_experiments(max_results=1)
            _OPENED.add(self.tracking_uri)
        return MlflowClient()

    def check(self) -> None:
        """Open the store, find or create the experiment and write to it; one-line LabError if it cannot.

        Called before any work, so an unreachable, unwritable or broken store
        fails the run at once instead of after the frames were processed.
        """
        shown = redact(self.tracking_uri)
        try:
            self._probe_database()
            experiment_id = self._experiment_id()
            # a write, so a read-only store fails here; it also makes the UI open on the runs
            self._client().set_experiment_tag(experiment_id, *next(iter(EXPERIMENT_KIND.items())))
        except LabError:
            raise
        except Exception as exc:  # SQLAlchemy, sqlite3, OS and MLflow errors alike
            raise LabError(f"tracking_uri={shown} cannot be used: {_root_cause(exc)}; point "
                           "MLFLOW_TRACKING_URI (or logger.tracking_uri) at a writable store",
                           key="tracking_uri") from None

    def _probe_database(self) -> None:
        """Connect once to a database store or tracking server, without MLflow's minutes of retries for an
        unreachable one."""
        scheme = self.tracking_uri.split(":", 1)[0].split("+", 1)[0]
        if scheme in ("http", "https"):
            _probe_server(self.tracking_uri)
            return
        if scheme not in _DATABASE_SCHEMES:
            return
        make_sqlite_folder(self.tracking_uri)

        connect_args = {} if scheme == "sqlite" else {"connect_timeout": 10}
        engine = sqlalchemy.create_engine(self.tracking_uri, poolclass=sqlalchemy.pool.NullPool,
                                          connect_args=connect_args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()

    def experiment_id(self) -> str:
        """The id of this tracker's experiment, created if it does not exist yet."""
        return self._experiment_id()

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
        client = self._client()
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.artifact_location:
            Path(self.artifact_location).mkdir(parents=True, exist_ok=True)
            location = Path(self.artifact_location).resolve().as_uri()
        try:
            with store_lock(self.tracking_uri):
                return client.create_experiment(self.experiment_name, artifact_location=location,
                                                tags=EXPERIMENT_KIND)
        except mlflow.exceptions.MlflowException:
            # another process created it in between
            return client.get_experiment_by_name(self.experiment_name).experiment_id

    @contextlib.contextmanager
    def run(self, params: dict, tags: dict | None = None, parent_run_id: str | None = None, *,
            fail_parent: bool = True, killed_by: tuple[type[BaseException], ...] = (KeyboardInterrupt,),
            run_name: str | None = None):
        """Start a run, yield its id, and end it FINISHED, FAILED or KILLED.

        An exception of a ``killed_by`` type (Ctrl-C, SIGTERM, a pruned trial)
        ends the run KILLED, any other FAILED; with ``fail_parent`` a failure
        also fails the parent run (a plain multirun), while an Optuna study
        judges its failed trials itself. Runs of dead processes of this host
        are ended FAILED first, by the first run of a process in a store (a
        sweep's trials would otherwise search the store once each).
        """
        experiment_id = self._experiment_id()
        self._close_stale_runs_once()
        all_tags = {key: redact(str(value)) for key, value in (tags or {}).items()}
        all_tags[PROCESS_TAG] = process_token()
        all_tags.setdefault("mlflow.note.content", METRIC_GLOSSARY)
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        active = mlflow.start_run(experiment_id=experiment_id, run_name=run_name or self.run_name, tags=all_tags)
        run_id = active.info.run_id
        try:
            mlflow.log_params({key: redact(value) for key, value in flatten(params).items()})
            yield run_id
        except BaseException as exc:
            killed = isinstance(exc, killed_by) or interrupted(exc)
            self._end_with_error(run_id, "KILLED" if killed else "FAILED", exc)
            if parent_run_id and fail_parent and not killed:
                self.end_parent(parent_run_id, "FAILED")
            raise
        mlflow.end_run(status="FINISHED")

    def _end_with_error(self, run_id: str, status: str, exc: BaseException) -> None:
        """End the active run with ``status`` and the error as a tag; say so if even that cannot be written."""
        reason = redact(f"{type(exc).__name__}: {exc}")[:5000]
        try:
            mlflow.set_tag("error", reason)
        except Exception:  # a full disk or a lost server may refuse the tag but still end the run
            pass
        try:
            mlflow.end_run(status=status)  # leaves the active run first, then writes the status
        except Exception as end_exc:
            log.error("MLflow run %s could not be ended %s (%s); once this process has ended, the next run or "
                      "`python -m src.cleanup` ends it FAILED", run_id, status,
                      redact(_root_cause(end_exc)))

    def _close_stale_runs_once(self) -> None:
        if self.tracking_uri not in _CLEANED:
            self.close_stale_runs()
            _CLEANED.add(self.tracking_uri)

    def close_stale_runs(self) -> list[str]:
        """End FAILED every RUNNING run of the store whose process on this host has died.

        A run records its process in the ``lab.process`` tag; a process that
        was killed (``kill -9``), crashed or lost power could not end its run.
        Runs of other hosts, of live processes, or without the tag (not the
        lab's) are left alone. Returns the ids of the runs it ended.
        """
        client = self._client()
        experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        closed = []
        for run in client.search_runs(experiments, f"attributes.status = 'RUNNING' and tags.`{PROCESS_TAG}` != ''",
                                      max_results=5000) if experiments else []:
            owner = run.data.tags[PROCESS_TAG]
            if not is_dead(owner):
                continue
            client.set_tag(run.info.run_id, "error", f"process {owner} ended without ending this run "
                           "(killed, crashed or powered off); ended FAILED by a later run or src.cleanup")
            client.set_terminated(run.info.run_id, status="FAILED")
            closed.append(run.info.run_id)
        if closed:
            log.warning("ended %d MLflow run(s) of dead processes as FAILED: %s", len(closed), ", ".join(closed))
        return closed

    def log_frames(self, name: str, root: str, frames: list[dict], *, attempts: int = 5) -> None:
        """The frames of the active run as its MLflow dataset input (the runs table's Dataset column).

        Parameters
        ----------
        name : str
            Shown in the UI, e.g. "football: 50 frames at scale 8".
        root : str
            The dataset folder (the dataset's source).
        frames : list of dict
            One row per frame (image id, file name); their digest identifies the sample.
        attempts : int, optional
            Tries at logging it when concurrent runs insert the same dataset together.
        """
        import warnings

        import pandas as pd

        with warnings.catch_warnings():
            # MLflow says a local folder could be read as two kinds of source; both are the same one
            warnings.filterwarnings("ignore", message="The specified dataset source", category=UserWarning)
            dataset = mlflow.data.from_pandas(pd.DataFrame(frames), source=root, name=name)
        for attempt in range(1, attempts + 1):
            try:
                mlflow.log_input(dataset, context="evaluation")
                return
            except mlflow.exceptions.MlflowException as exc:
                # MLflow looks for the dataset row, then inserts it: runs of one sample that log it at
                # the same time collide on its unique key; the next try finds the other run's row
                if attempt == attempts or not isinstance(exc.__cause__, sqlalchemy.exc.IntegrityError):
                    raise
                time.sleep(0.1 * attempt)

    def log_jobs_summary(self, run_id: str, objective: str, swept: dict[str, str], *, maximize: bool = True) -> None:
        """Log a plain multirun's results into its parent run.

        The swept keys and values as params (``sweep.<key>``), each finished
        job's ``objective`` as the step metric ``jobs/<objective>`` (step =
        job number), the best job's value as ``best_<objective>``, its run as
        the tags ``best_run_id`` and ``best_run_name``, and a table of all jobs.
        """
        client = self._client()
        parent = client.get_run(run_id)
        children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'",
                                      max_results=5000)
        rows = [{"job": int(c.data.tags.get("sweep.job", -1)), "run_name": c.info.run_name, "run_id": c.info.run_id,
                 "status": c.info.status, objective: c.data.metrics.get(objective)} for c in children]
        rows.sort(key=lambda row: row["job"])
        now = int(time.time() * 1000)
        scored = [row for row in rows if row["status"] == "FINISHED" and row[objective] is not None]
        metrics = [Metric(f"jobs/{objective}", row[objective], now, row["job"]) for row in scored]
        tags = [RunTag("mlflow.note.content", METRIC_GLOSSARY)]
        if scored:
            best = (max if maximize else min)(scored, key=lambda row: row[objective])
            metrics.append(Metric(f"best_{objective}", best[objective], now, 0))
            tags += [RunTag("best_run_id", best["run_id"]), RunTag("best_run_name", redact(best["run_name"]))]
        params = [Param(f"sweep.{key}", redact(value)[:6000]) for key, value in swept.items()]
        params.append(Param("objective", objective))
        client.log_batch(run_id, metrics=metrics, params=params, tags=tags)
        if rows:
            client.log_table(run_id, {key: [row[key] for row in rows] for key in rows[0]}, "jobs.json")

    def pictures(self, folder: Path, images: bool = True) -> RunPictures:
        """What ``log_results`` logs of each frame, made in ``folder`` as results come (see ``RunPictures``)."""
        return RunPictures(folder, self.image_width if self.log_images and images else None)

    def log_results(self, summary: dict[str, float], table, config_yaml: str, extra_files: dict[str, str] | None = None,
                    folders: dict[str, Path] | None = None, pictures: RunPictures | None = None) -> None:
        """Log summary and per-image metrics and the artifacts of the active run.

        ``table`` is the run's ``FrameTable`` (one row per frame), logged as
        ``per_image_metrics.csv``; a run of at most ``MAX_STEP_IMAGES`` frames
        also logs its rows as an MLflow table and, with ``image_steps``, as metric steps.
        ``pictures`` holds the frames' pictures and an optimising clusterer's
        curves. ``folders`` maps artifact folder names to local folders logged
        with the rest, all or nothing.
        """
        mlflow.log_metrics({k: v for k, v in summary.items() if math.isfinite(v)})
        now = int(time.time() * 1000)
        few = len(table) <= MAX_STEP_IMAGES
        rows = list(table.rows()) if few else []
        step_metrics = [Metric(f"image/{key}", value, now, step) for step, row in enumerate(rows)
                        for key, value in row.items() if self.image_steps and _is_frame_metric(key, value)]
        # an optimising clusterer's curve per image, one metric per image and value, stepped by iteration
        step_metrics += [Metric(key, value, now, step) for key, value, step in (pictures.curves if pictures else [])]
        client = self._client()
        run_id = mlflow.active_run().info.run_id
        for start in range(0, len(step_metrics), 1000):
            client.log_batch(run_id, metrics=step_metrics[start:start + 1000])
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            table.write_csv(tmp / "per_image_metrics.csv")
            (tmp / "config").mkdir()
            (tmp / "config" / "config.yaml").write_text(redact(config_yaml))
            for name, text in (extra_files or {}).items():
                (tmp / "config" / name).write_text(redact(text))
            for name, folder in {**(pictures.folders() if pictures else {}), **(folders or {})}.items():
                shutil.copytree(folder, tmp / name)
            columns = table.columns() if few else []

            def log_them():
                mlflow.log_artifacts(str(tmp))
                if rows:
                    mlflow.log_table({key: [row.get(key) for row in rows] for key in columns}, "per_image_metrics.json")

            self._log_all_or_nothing(run_id, log_them)

    def _log_all_or_nothing(self, run_id: str, log_them) -> None:
        """Call ``log_them``; if it fails (a full disk), delete what it logged and raise one LabError line."""
        try:
            log_them()
        except Exception as exc:
            artifact_uri = mlflow.get_run(run_id).info.artifact_uri
            try:
                get_artifact_repository(artifact_uri).delete_artifacts()
                kept = "none was kept"
            except Exception as delete_exc:
                kept = f"the partial ones could not be deleted ({_root_cause(delete_exc)})"
            raise LabError(f"the artifacts of MLflow run {run_id} could not be written to {redact(artifact_uri)} "
                           f"({_root_cause(exc)}); {kept}, and the run is FAILED") from None

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """One metric of the active run (a training curve steps it by epoch)."""
        mlflow.log_metric(key, value, step=step)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})

    def log_folder(self, folder: str | Path, artifact_path: str) -> None:
        """A folder (e.g. a trained model's ``model.json`` and ``weights.pt``) as artifacts of the active run."""
        mlflow.log_artifacts(str(folder), artifact_path)

    def log_image(self, image: np.ndarray, artifact_file: str) -> None:
        """One picture of the active run (a training's reconstructions), enlarged to at least ``image_width`` as
        a run's overlays are; none with ``log_images`` off."""
        if not self.log_images:
            return
        mlflow.log_image(viz.enlarge(np.ascontiguousarray(image), self.image_width), artifact_file=artifact_file)

    def download(self, uri: str) -> str:
        """A local copy of artifacts named by a ``runs:/<run_id>/<path>`` URI."""
        self._client()
        return mlflow.artifacts.download_artifacts(artifact_uri=uri)

    def start_parent(self, name: str, tags: dict | None = None) -> str:
        """Create a RUNNING parent run for a sweep and return its id."""
        experiment_id = self._experiment_id()
        self._close_stale_runs_once()
        tags = {key: redact(str(value)) for key, value in (tags or {}).items()}
        run = self._client().create_run(experiment_id, run_name=redact(name),
                                        tags={**tags, PROCESS_TAG: process_token()})
        return run.info.run_id

    def end_parent(self, run_id: str, status: str = "FINISHED", error: str | None = None) -> None:
        """End a parent run unless it already ended; FAILED sticks over FINISHED. ``error``, the reason a sweep
        failed or stopped, becomes its ``error`` tag when the run has none yet."""
        client = self._client()
        run = client.get_run(run_id)
        current = run.info.status
        if current == "RUNNING" or (current == "FINISHED" and status == "FAILED"):
            if error and "error" not in run.data.tags:
                client.set_tag(run_id, "error", redact(error)[:5000])
            client.set_terminated(run_id, status=status)

    def end_children(self, parent_run_id: str, status: str, error: str) -> list[str]:
        """End ``status`` the RUNNING runs under ``parent_run_id``, with ``error`` as their tag; returns their ids.

        For a sweep that stopped while jobs ran in processes it then ended: those could not end their runs.
        """
        client = self._client()
        experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
        query = f"attributes.status = 'RUNNING' and tags.`mlflow.parentRunId` = '{parent_run_id}'"
        ended = []
        for run in client.search_runs(experiments, query, max_results=5000) if experiments else []:
            client.set_tag(run.info.run_id, "error", redact(error)[:5000])
            client.set_terminated(run.info.run_id, status=status)
            ended.append(run.info.run_id)
        return ended

    def log_study(self, run_id: str, *, params: dict[str, str], metrics: dict[str, float],
                  tables: dict[str, dict[str, list]], figures: dict, tags: dict[str, str] | None = None) -> None:
        """Log a sweep's summary into its parent run: params, metrics, tags, tables (JSON) and figures (PNG)."""
        client = self._client()
        client.log_batch(run_id, params=[Param(k, redact(str(v))[:6000]) for k, v in params.items()],
                         tags=[RunTag(k, redact(str(v))) for k, v in (tags or {}).items()],
                         metrics=[Metric(k, v, int(time.time() * 1000), 0) for k, v in metrics.items()
                                  if math.isfinite(v)])
        for name, table in tables.items():
            client.log_table(run_id, table, name)
        for name, figure in figures.items():
            client.log_figure(run_id, figure, name)

    def run_info(self, run_id: str) -> dict:
        """Status, params, metrics and tags of a run (for tests and reports)."""
        run = self._client().get_run(run_id)
        return {"status": run.info.status, "params": run.data.params, "metrics": run.data.metrics,
                "tags": run.data.tags, "artifact_uri": run.info.artifact_uri}


def _probe_server(url: str, timeout: float = 10.0) -> None:
    """Raise OSError if nothing answers HTTP at ``url``; any answer, an error status too, is a server."""
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(url)
    # the address without its user name and password, which urllib would take for part of the host
    address = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""), path="/health",
                             query="", fragment="").geturl()
    try:
        with urllib.request.urlopen(address, timeout=timeout):
            pass
    except urllib.error.HTTPError:
        pass


def _is_frame_metric(key: str, value) -> bool:
    """Whether a table cell is one of a frame's metrics (not its id, name or stage seconds) with a value."""
    return key not in ("image_id", "file_name") and not key.startswith("seconds_") and value is not None


class RunPictures:
    """A run's pictures and fit curves, made frame by frame as its results come, so that no result is kept.

    Per frame, in ``folder``: the mask and label map at working size (data),
    the overlay and components enlarged to at least ``min_width`` (for
    people), and the label maps an optimising clusterer kept; with
    ``min_width`` None, no picture. ``curves`` gathers the clusterer's
    per-iteration values as ``(key, value, iteration)``.
    """

    KINDS = ("masks", "overlays", "clusters", "components", "fit_labels")

    def __init__(self, folder: Path, min_width: int | None):
        self.folder, self.min_width = Path(folder), min_width
        self.curves: list[tuple[str, float, int]] = []

    def prepare(self, result) -> dict[str, bytes]:
        """The frame's pictures as PNG files in memory, by path in the folder (a worker makes them beside the
        frames others score; ``add`` writes them)."""
        if self.min_width is None:
            return {}
        stem, player, frame = result.frame.artifact_stem, result.player, result.frame
        pictures = {
            f"masks/{stem}.png": viz.mask_image(player.mask),
            f"overlays/{stem}.png": viz.readable_overlay(frame.image, player.mask, frame.mask, self.min_width),
            f"clusters/{stem}.png": viz.label_image(result.labels),
            f"components/{stem}.png": viz.enlarge(viz.components_image(frame.image, player.components,
                                                                       player.centroids), self.min_width),
            **{f"fit_labels/{stem}_iter{iteration:04d}.png": viz.label_image(labels)
               for iteration, labels in result.fit_snapshots.items()},
        }
        encoded = {}
        for name, picture in pictures.items():
            buffer = io.BytesIO()
            # fast deflate: the same pixels at half the encoding time of the default level (36 ms a frame of a
            # default run), for files about a fifth larger
            Image.fromarray(np.ascontiguousarray(picture)).save(buffer, format="PNG", compress_level=1)
            encoded[name] = buffer.getvalue()
        return encoded

    def add(self, result, encoded: dict[str, bytes] | None = None) -> None:
        """Write the frame's pictures (``encoded`` by ``prepare``, or made now) and keep its curves."""
        self.curves += [(f"fit/{key}/{result.frame.stem}", value, iteration)
                        for iteration, values in enumerate(result.fit_history, 1)
                        for key, value in values.items() if math.isfinite(value)]
        for name, data in (self.prepare(result) if encoded is None else encoded).items():
            path = self.folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def folders(self) -> dict[str, Path]:
        """The picture folders made so far, by artifact folder name."""
        return {kind: self.folder / kind for kind in self.KINDS if (self.folder / kind).is_dir()}


def _root_cause(exc: BaseException) -> str:
    """The first line of the innermost cause of ``exc``, with its type: what went wrong, not where."""
    seen = set()
    while (exc.__cause__ or exc.__context__) is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


__all__ = ["MLflowTracker", "PARENT_RUN_FILE", "PROCESS_TAG", "RunPictures", "flatten"]
