"""The MLflow parent run of a multirun: one parent, every job's run under it.

Hydra calls ``SweepParentRun`` (``conf/hydra/default.yaml``) around every
multirun, a plain ``-m`` sweep or an Optuna study.
"""

from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.compose import build, objective_names, parent_run_file, parent_run_id


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
        parent_run_file(sweep_dir).write_text(run_id)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        run_id = parent_run_id(config.hydra.sweep.dir)
        if run_id is not None:
            tracker = build(config.logger, "logger")
            try:
                if config.hydra.sweeper.get("_target_", "").endswith("BasicSweeper"):
                    # an Optuna study logs its own summary; a plain multirun gets its jobs' results here
                    from src.summary import lower_is_better

                    objective = objective_names(config.objective)[0]
                    tracker.log_jobs_summary(run_id, objective, swept_overrides(config),
                                             maximize=not lower_is_better(objective))
            finally:
                tracker.end_parent(run_id, "FINISHED")


def swept_overrides(config: DictConfig) -> dict[str, str]:
    """The command line's sweeps of a multirun, ``{"clusterer.n_clusters": "8,12,16"}``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    return {o.get_key_element(): o.input_line.split("=", 1)[1] for o in parsed if o.is_sweep_override()}
