"""A Hydra sweeper on current Optuna: persistent, resumable studies over config overrides.

``hydra-optuna-sweeper`` pins Optuna 2 and fails with persistent storage
under SQLAlchemy 2, so this is the project's own, small replacement. It keeps
that plugin's config shape (``direction``, ``study_name``, ``storage``,
``n_trials``, ``n_jobs``, ``sampler``, ``pruner``, ``params`` in Hydra's
override grammar) and adds ``conditional`` parameters and a failure budget.

Search space, in ``hydra.sweeper.params`` (or as sweep overrides on the
command line):

- ``choice(a, b, c)``: categorical;
- ``range(start, stop, step)``: integers (or floats) like Python's range;
- ``interval(low, high)``: a float; ``tag(int, interval(low, high))``: an integer;
- ``tag(log, interval(...))``: sampled on a log scale.

``conditional`` maps ``"<key>=<value>"`` to more parameters that are only
suggested when ``<key>`` took ``<value>`` (a group choice and its own
parameters). A study is resumed when one of the same name exists in
``storage``; ``n_trials`` counts every finished trial of the study.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from src.errors import LabError, check_range

log = logging.getLogger(__name__)
DIRECTIONS = ("maximize", "minimize")
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override such as ``k=range(4, 20, 4)``."""
    key = override.get_key_element()
    sweep = override.value()
    log_scale = "log" in getattr(sweep, "tags", set())
    if isinstance(sweep, ChoiceSweep):
        choices = [str(c) if not isinstance(c, (bool, int, float, str)) else c for c in sweep.list]
        return CategoricalDistribution(choices)
    if isinstance(sweep, RangeSweep):
        values = list(override.sweep_iterator())
        if not values:
            raise LabError(f"hydra.sweeper.params.{key}: {override.input_line} yields no value; "
                           "check start < stop for a positive step")
        if all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step)):
            return IntDistribution(min(values), max(values), step=abs(sweep.step), log=log_scale)
        return FloatDistribution(min(values), max(values), step=abs(sweep.step), log=log_scale)
    if isinstance(sweep, IntervalSweep):
        if not sweep.start < sweep.end:
            raise LabError(f"hydra.sweeper.params.{key}: interval({sweep.start}, {sweep.end}) is empty; "
                           "give low < high")
        if "int" in sweep.tags:  # Hydra's grammar reads interval ends as floats
            return IntDistribution(math.ceil(sweep.start), math.floor(sweep.end), log=log_scale)
        return FloatDistribution(float(sweep.start), float(sweep.end), log=log_scale)
    raise LabError(f"hydra.sweeper.params.{key}: {override.input_line!r} is not a sweep; use choice(...), "
                   "range(...), interval(...), tag(int, interval(...)) or tag(log, interval(...))")


def parse_space(params: Mapping[str, str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """Split ``key: expression`` pairs into distributions (sweeps) and fixed overrides."""
    parser = OverridesParser.create()
    space, fixed = {}, {}
    for key, expression in params.items():
        try:
            override = parser.parse_override(f"{key}={expression}")
        except Exception as exc:  # Hydra's grammar errors come in several types
            raise LabError(f"hydra.sweeper.params.{key}={expression!r} cannot be parsed: "
                           f"{str(exc).splitlines()[0]}") from None
        if override.is_sweep_override():
            space[override.get_key_element()] = distribution(override)
        else:
            fixed[override.get_key_element()] = override.get_value_element_as_str()
    return space, fixed


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """Ask ``trial`` for ``name`` from ``dist`` through Optuna's public suggest API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


@dataclass
class Space:
    """Unconditional distributions, fixed overrides and ``"key=value" -> distributions`` conditions."""

    params: dict[str, BaseDistribution]
    fixed: dict[str, str]
    conditional: dict[tuple[str, str], dict[str, BaseDistribution]]

    @classmethod
    def from_config(cls, params: Mapping, conditional: Mapping) -> Space:
        space, fixed = parse_space(params)
        branches = {}
        for condition, sub in conditional.items():
            key, sep, value = str(condition).partition("=")
            if not sep or key not in space:
                raise LabError(f"hydra.sweeper.conditional has {condition!r}; conditions must be "
                               f"'<key>=<value>' with <key> one of the swept params {sorted(space)}")
            branches[(key, value)] = parse_space(sub)[0]
        return cls(space, fixed, branches)

    def overrides(self, trial: optuna.Trial) -> list[str]:
        """Suggest every parameter this trial needs; returns Hydra override strings."""
        chosen = {name: suggest(trial, name, dist) for name, dist in self.params.items()}
        for (key, value), sub in self.conditional.items():
            if str(chosen[key]) == value:
                chosen.update({name: suggest(trial, name, dist) for name, dist in sub.items()})
        return [f"{k}={v}" for k, v in self.fixed.items()] + [f"{k}={v}" for k, v in chosen.items()]


def objective_values(value: Any, n_objectives: int) -> list[float] | None:
    """The job's return as a list of floats, or None if it is not a finite value of the right shape."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    if len(values) != n_objectives or not all(math.isfinite(v) for v in values):
        return None
    return values


def open_study(study_name: str, storage: str | None, directions: list[str], sampler, pruner) -> optuna.Study:
    """Create the study or load the one of that name; a stored study with other directions is an error."""
    for direction in directions:
        if direction not in DIRECTIONS:
            raise LabError(f"hydra.sweeper.direction={direction!r} is not allowed; use maximize or minimize "
                           "(or a list of them)")
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, directions=directions,
                                    sampler=sampler, pruner=pruner, load_if_exists=True)
    except Exception as exc:  # SQLAlchemy and Optuna raise many types for an unusable storage
        raise LabError(f"hydra.sweeper.storage={storage!r} cannot be used ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0][:200]}); give a reachable RDB URL such as "
                       "sqlite:///path/optuna.db or postgresql://user@host/db") from None
    stored = [d.name.lower() for d in study.directions]
    if stored != list(directions):
        raise LabError(f"hydra.sweeper.study_name={study_name!r} exists in {storage} with directions {stored}, "
                       f"not {list(directions)}; pick another study_name")
    return study


class OptunaSweeper(Sweeper):
    """Hydra sweeper that asks Optuna for overrides and tells it each job's return value.

    Parameters follow ``conf/hydra/sweeper/optuna.yaml``.
    """

    def __init__(self, direction: Any = "maximize", study_name: str | None = None, storage: str | None = None,
                 n_trials: int = 20, n_jobs: int = 1, sampler: Any = None, pruner: Any = None,
                 params: Mapping | None = None, conditional: Mapping | None = None,
                 max_failure_rate: float = 0.0):
        check_range("hydra.sweeper.n_trials", n_trials, 1, integer=True)
        check_range("hydra.sweeper.n_jobs", n_jobs, 1, integer=True)
        check_range("hydra.sweeper.max_failure_rate", max_failure_rate, 0, 1)
        directions = OmegaConf.to_container(direction) if OmegaConf.is_config(direction) else direction
        self.directions = [directions] if isinstance(directions, str) else list(directions)
        self.study_name = study_name
        self.storage = storage
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        # Hydra instantiates the nested sampler and pruner configs along with the sweeper
        self.sampler, self.pruner = sampler, pruner
        self.params = dict(params or {})
        self.conditional = {str(k): dict(v) for k, v in (conditional or {}).items()}
        self.max_failure_rate = max_failure_rate
        self.study: optuna.Study | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                               task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> optuna.Study:
        """Run trials until the study has ``n_trials`` finished ones; returns the study."""
        cli_params = {}
        for line in arguments:
            key, _, value = line.partition("=")
            cli_params[key] = value
        space = Space.from_config({**self.params, **cli_params}, self.conditional)
        if not space.params:
            raise LabError("hydra.sweeper.params is empty; give at least one choice/range/interval to search")
        study = open_study(self.study_name, self.storage, self.directions, self.sampler, self.pruner)
        self.study = study
        failures = 0
        launched = 0
        while True:
            done = len(study.get_trials(deepcopy=False, states=FINISHED))
            if done >= self.n_trials:
                break
            trials = [study.ask() for _ in range(min(self.n_jobs, self.n_trials - done))]
            batch = [space.overrides(trial) for trial in trials]
            self.validate_batch_is_legal(batch)
            returns = self.launcher.launch(batch, initial_job_idx=launched)
            launched += len(batch)
            for trial, overrides, ret in zip(trials, batch, returns):
                try:
                    values = objective_values(ret.return_value, len(self.directions))
                except Exception as exc:  # the job's own error, re-raised by JobReturn
                    log.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
                    values = None
                if values is None:
                    failures += 1
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    study.tell(trial, values)
            if failures > self.max_failure_rate * launched:
                raise LabError(f"{failures} of {launched} trials failed, more than "
                               f"hydra.sweeper.max_failure_rate={self.max_failure_rate}; see the failed MLflow "
                               "runs for the errors")
        self._report(study)
        return study

    def _report(self, study: optuna.Study) -> None:
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            return
        for trial in study.best_trials:
            log.info("best trial %d: values %s, params %s", trial.number, trial.values, trial.params)
