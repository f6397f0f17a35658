"""A sweep job's side of its Optuna trial: the handle ``src.run`` reports to and records on.

The sweeper (``src.sweep.sweeper``) passes each job ``optuna_trial=<number>``;
``study_trial`` opens that trial in the sweeper's study from the job's own
Hydra config, so a job in another process or on another machine finds it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping

import optuna
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.compose import build
from src.errors import check_range
from src.sqlite_stores import use_write_ahead_log

# what a job returns when its trial was pruned (a return, not an exception, keeps Hydra's error log quiet)
PRUNED = "pruned"
# the study's user attribute naming the conf/hparams_search file it was swept with ("" for none), so that a
# trial can be exported with the space's fixed settings whatever the study is called
SPACE_ATTR = "lab.hparams_search"
# trial attribute: the sweep's fixed overrides that shape the trial's numbers (command line and search space),
# which src.sweep.export_trial writes into the experiment with the trial's params
FIXED_ATTR = "lab.fixed"


@functools.lru_cache(maxsize=8)
def rdb_storage(url: str) -> optuna.storages.RDBStorage:
    """One storage object per URL and process: the trials of a sweep share its connection pool."""
    use_write_ahead_log()
    return optuna.storages.RDBStorage(url)


class StudyTrial:
    """A sweep job's side of its Optuna trial: intermediate values, pruning and the metrics it recorded.

    ``study_trial`` builds one when the sweeper passed the job a trial number; the
    storage, study and pruner come from the sweeper's own config, so a job in
    another process or on another machine finds the same study.

    Parameters
    ----------
    storage : str
        RDB URL of the study.
    study_name : str
    number : int
        The trial's number in the study.
    pruner : optuna.pruners.BasePruner or None
        The sweeper's pruner; None never prunes.
    report_every : int, default 10
        Images between intermediate reports.
    """

    def __init__(self, storage: str, study_name: str, number: int, pruner=None, report_every: int = 10):
        check_range("hydra.sweeper.report_every", report_every, 1, integer=True)
        backend = rdb_storage(storage)
        study = optuna.load_study(study_name=study_name, storage=backend,
                                  pruner=optuna.pruners.NopPruner() if pruner is None else pruner)
        trial_id = backend.get_trial_id_from_study_id_trial_number(backend.get_study_id_from_name(study_name), number)
        self.trial = optuna.trial.Trial(study, trial_id)
        self.number = number
        self.study_name = study_name
        self.multi_objective = len(study.directions) > 1
        self.report_every = report_every

    def report(self, value: float, step: int) -> None:
        """Record an intermediate value (single-objective studies); raises ``optuna.TrialPruned`` to stop."""
        if self.multi_objective or not math.isfinite(value):
            return
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"trial {self.number} pruned after {step} images at {value:.4f}")

    def record(self, summary: Mapping[str, float], run_id: str) -> None:
        """Keep every finite summary metric and the MLflow run id on the trial, for reports across objectives."""
        self.trial.set_user_attr("metrics", {k: float(v) for k, v in summary.items() if math.isfinite(v)})
        self.trial.set_user_attr("mlflow_run_id", run_id)


def study_trial(cfg: DictConfig) -> StudyTrial | None:
    """The job's handle on its Optuna trial when the project's sweeper launched it, else None."""
    if cfg.get("optuna_trial") is None:
        return None
    sweeper = HydraConfig.get().sweeper
    pruner = None if sweeper.get("pruner") is None else build(sweeper.pruner, "hydra.sweeper.pruner")
    return StudyTrial(sweeper.storage, sweeper.study_name, int(cfg.optuna_trial), pruner=pruner,
                      report_every=sweeper.report_every)
