"""The MLflow parent run of a multirun: one parent, every job's run under it.

Hydra calls ``SweepParentRun`` (``conf/hydra/default.yaml``) around every
multirun, a plain ``-m`` sweep or an Optuna study.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from src.compose import (
    build,
    build_stages,
    build_tracker,
    build_training,
    config_error,
    objective_names,
    parent_run_file,
    parent_run_id,
    redact_file,
)
from src.errors import LabError
from src.signals import interrupted
from src.urls import redact

# parent runs this process opened and has not ended, by run id, with their trackers and sweep folders
_OPEN: dict = {}
# seconds that job processes get to end after SIGTERM, before they are killed
JOB_GRACE = 5.0


class SweepParentRun(Callback):
    """Groups the jobs of a multirun under one MLflow parent run.

    The parent's id is written to the sweep folder, where every job (in this
    process or another) finds it; the parent ends FINISHED with the sweep, or
    FAILED as soon as a job fails.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            if config.hydra.sweeper.get("_target_", "").endswith("BasicSweeper"):
                check_swept_values(config)
            tracker = build_tracker(config)
        except LabError as exc:
            # Hydra turns a callback's exception into a warning and runs the jobs anyway
            raise SystemExit(redact(f"error: {exc}")) from None
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        swept = " ".join(f"{key}={value}" for key, value in swept_overrides(config).items())
        # an Optuna study's parent carries the study's name from the start, so a stopped one is found by it too
        study = config.hydra.sweeper.get("study_name")
        name = f"study {study}" if study else f"sweep {swept or sweep_dir.name}"
        run_id = tracker.start_parent(name, tags={"sweep_dir": str(sweep_dir)})
        _OPEN[run_id] = (tracker, sweep_dir)
        parent_run_file(sweep_dir).write_text(run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        run_id = parent_run_id(config.hydra.sweep.dir)
        if run_id is not None:
            tracker = build(config.logger, "logger")
            try:
                # a training (src.train) has no objective to rank its jobs by
                if config.hydra.sweeper.get("_target_", "").endswith("BasicSweeper") and "objective" in config:
                    # an Optuna study logs its own summary; a plain multirun gets its jobs' results here
                    from src.summary import lower_is_better

                    objective = objective_names(config.objective)[0]
                    tracker.log_jobs_summary(run_id, objective, swept_overrides(config),
                                             maximize=not lower_is_better(objective))
            finally:
                tracker.end_parent(run_id, "FINISHED")
                _OPEN.pop(run_id, None)


@contextlib.contextmanager
def parents_ended_on_failure():
    """End the multirun parent runs that a failed or stopped command leaves RUNNING, and the runs under them.

    Hydra calls ``on_multirun_end`` only when every job ran: a sweep stopped
    by Ctrl-C or SIGTERM, or failing on a job's config, leaves its parent
    RUNNING, and jobs in processes of their own (``n_jobs`` > 1) are ended
    with this process, before they can end their runs. The job processes
    are ended first, then every run under the parent and the parent itself
    are ended KILLED (a stop) or FAILED, with the reason as their ``error``
    tag.
    """
    try:
        yield
    except BaseException as exc:
        # Hydra reports a failed multirun and exits 1: the error is what that exit was raised while handling
        cause = exc.__context__ if isinstance(exc, SystemExit) and exc.__context__ is not None else exc
        if _OPEN and not (isinstance(exc, SystemExit) and exc.code in (0, None)):
            _end_job_processes()
            status = "KILLED" if interrupted(cause) else "FAILED"
            reason = f"the sweep was stopped ({type(cause).__name__})" if status == "KILLED" else \
                f"the sweep failed: {type(cause).__name__}: {cause}"
            for run_id, (tracker, sweep_dir) in list(_OPEN.items()):
                tracker.end_children(run_id, status, reason)
                tracker.end_parent(run_id, status, error=reason)
                _OPEN.pop(run_id, None)
                # a multirun that failed before its first job started left Hydra's copy of its config unmasked
                redact_file(sweep_dir / "multirun.yaml")
        raise


def _end_job_processes() -> None:
    """SIGTERM this process's children (a launcher's job processes and their frame workers), then SIGKILL
    those still there after ``JOB_GRACE`` seconds. Resource trackers are left to clean up after them."""
    children = [child for child in psutil.Process().children(recursive=True) if not _is_resource_tracker(child)]
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=JOB_GRACE)
    for child in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def check_swept_values(config: DictConfig) -> None:
    """Compose and build the stages of a plain multirun with each swept value in turn (the other swept keys at
    their first value), so that a bad value or option fails in one line before the first job, not after the
    jobs before it. Costs a composition and a build per value, not per job."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    swept = {o.get_key_element(): list(o.sweep_string_iterator()) for o in parsed if o.is_sweep_override()}
    loader = GlobalHydra.instance().config_loader()
    checked = set()
    for key, values in swept.items():
        for value in values:
            choice = tuple(f"{k}={value if k == key else options[0]}" for k, options in swept.items())
            if choice in checked:
                continue
            checked.add(choice)
            try:
                job = loader.load_sweep_config(master_config=config, sweep_overrides=[*fixed, *choice])
            except Exception as exc:  # Hydra's config errors come in several types
                raise LabError(f"{key}={value}: {config_error(exc)}") from None
            with open_dict(job):
                del job["hydra"]
            build_job(job)


def build_job(job: DictConfig) -> None:
    """Build what a job builds before its work, so its bad values fail here: a training's model, settings and
    data (``conf/train.yaml``), or a run's stages."""
    if "model" in job and "train" in job:
        build_training(job)
        build(job.data, "data")
    else:
        build_stages(job)


def swept_overrides(config: DictConfig) -> dict[str, str]:
    """The command line's sweeps of a multirun, ``{"clusterer.n_clusters": "8,12,16"}``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    return {o.get_key_element(): o.input_line.split("=", 1)[1] for o in parsed if o.is_sweep_override()}


def _is_resource_tracker(process: psutil.Process) -> bool:
    try:
        return "resource_tracker" in " ".join(process.cmdline())
    except psutil.Error:
        return False

