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
``storage``; ``n_trials`` counts the study's trials, across runs and workers
(see ``counted_trials``).

``OptunaSweeper`` asks and tells in the Hydra process; the job's side of a
trial (intermediate values for the pruner, recorded metrics) is
``src.sweep.trial.StudyTrial``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy.exc
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.errors import CompactHydraException
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from src.compose import available_cores, build, build_stages, config_error, objective_names, parent_run_id
from src.errors import LabError, check_range
from src.processes import is_dead, process_token
from src.progress import progress
from src.signals import interrupted
from src.sweep.trial import FIXED_ATTR, PRUNED, SPACE_ATTR, rdb_storage
from src.urls import make_sqlite_folder, redact, store_lock

log = logging.getLogger(__name__)
DIRECTIONS = ("maximize", "minimize")
TrialState = optuna.trial.TrialState
# user attributes the sweeper keeps on trials: which sweeper process ran it, and why a counted trial failed
WORKER_ATTR = "lab.worker"
FAILURE_ATTR = "lab.failure"


# keys of where a sweep reads and writes and how it spreads over the machine: a trial's numbers do not
# depend on them, so an exported trial leaves them out (``Space.shaping``)
PLACES = ("hydra", "logger", "paths", "optuna_trial", "hparams_search", "objective", "task_name", "workers",
          "threads", "data.root", "data.path", "data.synthetic_root", "data.cache_frames", "data.write_masks")


class SweepError(LabError, CompactHydraException):
    """A bad search space, storage or failure budget: Hydra prints it as one line, without a traceback."""


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override such as ``k=range(4, 20, 4)``."""
    try:
        return _distribution(override)
    except LabError:
        raise
    except ValueError as exc:  # Optuna's own checks: a log scale from 0, a log scale with a step, low > high
        raise LabError(f"hydra.sweeper.params.{override.get_key_element()}: {override.input_line} is not a "
                       f"search range: {str(exc).splitlines()[0]}") from None


def _distribution(override: Override) -> BaseDistribution:
    key = override.get_key_element()
    sweep = override.value()
    log_scale = "log" in getattr(sweep, "tags", set())
    if isinstance(sweep, ChoiceSweep):
        choices = [str(c) if not isinstance(c, (bool, int, float, str)) else c for c in sweep.list]
        return CategoricalDistribution(choices)
    if isinstance(sweep, RangeSweep):
        if sweep.step == 0:
            raise LabError(f"hydra.sweeper.params.{key}: {override.input_line} has step 0; give a non-zero step")
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


def condition_value(key: str, value: str) -> Any:
    """The value of ``<key>=<value>`` in a condition, read as Hydra reads an override (``true`` is True), with
    lists and dicts as the strings their choices are kept as (see ``distribution``)."""
    parsed = OverridesParser.create().parse_override(f"{key}={value}").value()
    return parsed if isinstance(parsed, (bool, int, float, str)) or parsed is None else str(parsed)


def same_choice(a: Any, b: Any) -> bool:
    """Equal values, a bool never equal to a number (``True == 1`` in Python)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _check_one_distribution_per_name(space: dict[str, BaseDistribution],
                                     branches: dict[tuple[str, str], dict[str, BaseDistribution]]) -> None:
    """Refuse a parameter that two places of the space give other choices or kinds: Optuna keeps one per name."""
    seen = dict(space)
    for (key, value), sub in branches.items():
        for name, dist in sub.items():
            if name in seen and not compatible(seen[name], dist):
                raise LabError(f"hydra.sweeper.conditional['{key}={value}'] searches {name} as {dist}, another "
                               f"space than {seen[name]} elsewhere; Optuna keeps one per name, so give the same")
            seen.setdefault(name, dist)


def compatible(old: BaseDistribution, new: BaseDistribution) -> bool:
    """Whether a study that asked for a parameter from ``old`` can ask for it from ``new``."""
    try:
        optuna.distributions.check_distribution_compatibility(old, new)
    except ValueError:
        return False
    return True


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
            choices = getattr(space[key], "choices", None)
            if choices is None or not any(same_choice(c, condition_value(key, value)) for c in choices):
                takes = list(choices) if choices is not None else "a range"
                raise LabError(f"hydra.sweeper.conditional has {condition!r}, but {key} takes {takes}; condition "
                               "on one of its choices")
            branches[(key, value)] = parse_space(sub)[0]
        _check_one_distribution_per_name(space, branches)
        return cls(space, fixed, branches)

    def shaping(self) -> dict[str, str]:
        """The fixed overrides that can change a trial's numbers: not where things are (folders, stores, the
        machine's workers and threads) nor the sweep's own settings."""
        return {key: value for key, value in self.fixed.items()
                if not any(key.lstrip("+") == place or key.lstrip("+").startswith(f"{place}.") for place in PLACES)
                and not key.startswith("~")}

    def distributions(self) -> dict[str, BaseDistribution]:
        """Every parameter a trial may be asked for, the conditional ones included."""
        return {name: dist for sub in (self.params, *self.conditional.values()) for name, dist in sub.items()}

    def overrides(self, trial: optuna.Trial) -> list[str]:
        """Suggest every parameter this trial needs; returns Hydra override strings."""
        chosen = {name: suggest(trial, name, dist) for name, dist in self.params.items()}
        for (key, value), sub in self.conditional.items():
            if same_choice(chosen[key], condition_value(key, value)):
                chosen.update({name: suggest(trial, name, dist) for name, dist in sub.items()})
        return [f"{k}={v}" for k, v in self.fixed.items()] + [f"{k}={v}" for k, v in chosen.items()]

    def examples(self) -> list[list[str]]:
        """Override lists that together use every categorical option and every conditional branch."""
        def first(dist):
            return dist.choices[0] if isinstance(dist, CategoricalDistribution) else dist.low

        base = {name: first(dist) for name, dist in self.params.items()}
        variants = [dict(base)]
        for name, dist in self.params.items():
            for choice in getattr(dist, "choices", ())[1:]:
                variants.append({**base, name: choice})
        for (key, value), sub in self.conditional.items():
            variants.append({**base, key: value, **{name: first(dist) for name, dist in sub.items()}})
        fixed = [f"{k}={v}" for k, v in self.fixed.items()]
        return [fixed + [f"{k}={v}" for k, v in variant.items()] for variant in variants]


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


def _create_or_load(study_name: str, storage: str | None, directions: list[str], sampler, pruner,
                    attempts: int = 5) -> optuna.Study:
    for attempt in range(1, attempts + 1):
        try:
            # a new SQLite file gets its tables from one process at a time
            with store_lock(storage) if storage else contextlib.nullcontext():
                backend = None if storage is None else rdb_storage(storage)
                return optuna.create_study(study_name=study_name, storage=backend, directions=directions,
                                           sampler=sampler,
                                           pruner=optuna.pruners.NopPruner() if pruner is None else pruner,
                                           load_if_exists=True)
        except (sqlalchemy.exc.IntegrityError, optuna.exceptions.DuplicatedStudyError):
            # workers starting together on an empty database race to create its tables or the study
            if attempt == attempts:
                raise
            rdb_storage.cache_clear()
            time.sleep(0.5 * attempt)


def open_study(study_name: str, storage: str | None, directions: list[str], sampler, pruner) -> optuna.Study:
    """Create the study or load the one of that name; a stored study with other directions is an error."""
    for direction in directions:
        if direction not in DIRECTIONS:
            raise LabError(f"hydra.sweeper.direction={direction!r} is not allowed; use maximize or minimize "
                           "(or a list of them)")
    try:
        if storage is not None:
            make_sqlite_folder(storage)
        study = _create_or_load(study_name, storage, directions, sampler, pruner)
    except Exception as exc:  # SQLAlchemy and Optuna raise many types for an unusable storage
        raise LabError(redact(f"hydra.sweeper.storage={storage!r} cannot be used ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200]})") + "; give a reachable RDB URL such as "
                       "sqlite:///path/optuna.db or postgresql://user@host/db") from None
    stored = [d.name.lower() for d in study.directions]
    if stored != list(directions):
        raise LabError(f"hydra.sweeper.study_name={study_name!r} exists in {redact(storage)} with directions {stored}, "
                       f"not {list(directions)}; pick another study_name")
    return study


def counted_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Trials that count towards ``n_trials``: finished, pruned, running, or failed by their job.

    Trials cut off by a killed sweeper or asked beyond ``n_trials`` by a
    concurrent worker end FAIL without a failure reason and do not count, so a
    resumed or distributed study ends with exactly ``n_trials`` counted trials.
    """
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            or (t.state == TrialState.FAIL and FAILURE_ATTR in t.user_attrs)]


def fail_interrupted(study: optuna.Study) -> list[int]:
    """End as uncounted FAIL the RUNNING trials whose sweeper process on this host is gone; returns their numbers."""
    stale = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if is_dead(str(trial.user_attrs.get(WORKER_ATTR, ""))):
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            stale.append(trial.number)
    return stale


def job_outcome(job_return, n_objectives: int) -> tuple[TrialState, list[float] | None, str]:
    """(state, values, failure reason) of one launched job."""
    try:
        value = job_return.return_value
    except optuna.TrialPruned:
        return TrialState.PRUNED, None, ""
    except Exception as exc:  # the job's own error, re-raised by Hydra's JobReturn
        return TrialState.FAIL, None, f"{type(exc).__name__}: {exc}"
    if isinstance(value, str) and value == PRUNED:
        return TrialState.PRUNED, None, ""
    values = objective_values(value, n_objectives)
    if values is None:
        return TrialState.FAIL, None, f"returned {value!r}, not {n_objectives} finite number(s)"
    return TrialState.COMPLETE, values, ""


def _best_so_far(study: optuna.Study) -> str:
    """``best 0.8512 (#17)`` for one objective, the Pareto front's size for several."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return ""
    if len(study.directions) > 1:
        return f"Pareto front {len(study.best_trials)}"
    return f"best {study.best_value:.4f} (#{study.best_trial.number})"


class OptunaSweeper(Sweeper):
    """Hydra sweeper that asks Optuna for overrides and tells it each job's return value.

    Parameters follow ``conf/hydra/sweeper/optuna.yaml``. Each job gets
    ``optuna_trial=<number>``, through which it reports intermediate values to
    the pruner and stores all its metrics on the trial. The MLflow parent run
    of the sweep receives the study's summary, tables and plots.
    """

    def __init__(self, direction: Any = "maximize", study_name: str | None = None, storage: str | None = None,
                 n_trials: int = 20, n_jobs: int = 1, sampler: Any = None, pruner: Any = None,
                 params: Mapping | None = None, conditional: Mapping | None = None,
                 max_failure_rate: float = 0.0, report_every: int = 10):
        self._settings = {"n_trials": (n_trials, 1, None, True), "n_jobs": (n_jobs, 1, None, True),
                          "max_failure_rate": (max_failure_rate, 0, 1, False),
                          "report_every": (report_every, 1, None, True)}
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
        # checked here rather than in __init__: Hydra wraps an error of instantiation in lines of its own
        try:
            for name, (value, low, high, integer) in self._settings.items():
                check_range(f"hydra.sweeper.{name}", value, low, high, integer=integer)
            for name, value in (("study_name", self.study_name), ("storage", self.storage)):
                if not isinstance(value, str) or not value.strip():
                    raise LabError(f"hydra.sweeper.{name}={value!r} is not allowed; a study needs a name and an "
                                   "RDB storage that every trial's job can open (sqlite:///path/optuna.db)")
        except LabError as exc:
            raise SweepError(redact(f"error: {exc}")) from None
        self.hydra_context = hydra_context
        self.config = config
        if "n_jobs" in config.hydra.launcher:
            with open_dict(config):
                config.hydra.launcher.n_jobs = self.n_jobs
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                               task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> optuna.Study:
        """Run trials until the study counts ``n_trials``; returns the study."""
        try:
            return self._sweep(arguments)
        except LabError as exc:
            raise SweepError(redact(f"error: {exc}")) from None

    def _sweep(self, arguments: list[str]) -> optuna.Study:
        parent = self._parent_run()
        try:
            study, objectives = self._run_study(arguments)
        except BaseException as exc:
            # the multirun callback opened the parent run; a sweep that stops ends it, never leaves it RUNNING
            if parent is not None:
                stopped = interrupted(exc)
                parent[0].end_parent(parent[1], "KILLED" if stopped else "FAILED",
                                     error=f"the sweep was stopped ({type(exc).__name__})" if stopped
                                     else f"the sweep failed: {type(exc).__name__}: {exc}")
            raise
        if parent is not None:
            self._log_study(study, objectives, *parent)
        self._log_best(study)
        return study

    def _run_study(self, arguments: list[str]) -> tuple[optuna.Study, list[str]]:
        cli_params = dict(line.partition("=")[::2] for line in arguments)
        space = Space.from_config({**self.params, **cli_params}, self.conditional)
        if not space.params:
            raise LabError("hydra.sweeper.params is empty; give at least one choice/range/interval to search")
        objectives = objective_names(self.config.objective)
        if len(objectives) != len(self.directions):
            raise LabError(f"objective={objectives} has {len(objectives)} value(s) but hydra.sweeper.direction="
                           f"{self.directions} has {len(self.directions)}; give one direction per objective")
        self._check_cores()
        self._check_space(space)
        study = open_study(self.study_name, self.storage, self.directions, self.sampler, self.pruner)
        self.study = study
        self._check_resumed_space(study, space)
        study.set_user_attr(SPACE_ATTR, str(self.config.hydra.runtime.choices.get("hparams_search") or ""))
        self._reseed_on_resume(study)
        stale = fail_interrupted(study)
        if stale:
            log.warning("trials %s were cut off by a stopped sweep; they do not count and are run again", stale)
        self._run_trials(study, space)
        return study, objectives

    def _check_cores(self) -> None:
        """Refuse a sweep whose parallel trials, frame workers and library threads need more cores than there are.

        ``hydra.sweeper.n_jobs`` trials at once, each scoring frames in
        ``workers`` processes of ``threads`` BLAS threads (null: every core):
        oversubscribed cores make every trial slower than running fewer.
        """
        cores, workers, threads = available_cores(), self.config.workers, self.config.threads
        if threads is not None:
            check_range("threads", threads, 1, integer=True)
        if workers == "auto":
            return
        check_range("workers", workers, 1, integer=True)
        busy = self.n_jobs * int(workers) * (cores if threads is None else int(threads))
        if busy > cores:
            raise LabError(f"hydra.sweeper.n_jobs={self.n_jobs} x workers={workers} x threads={threads} keeps {busy} "
                           f"cores busy on this {cores}-core machine; keep the product at most {cores} (n_jobs for "
                           "trials at once and workers=auto, which gives each trial its share)",
                           key="hydra.sweeper.n_jobs")

    def _check_space(self, space: Space) -> None:
        """Compose and build the stages for every option and branch of the space, before any trial.

        A key or option that does not exist, or a value a stage rejects
        (including the base config's, such as a missing data folder), fails
        the sweep here with one line instead of failing every trial.
        """
        for overrides in space.examples():
            try:
                cfg = self.hydra_context.config_loader.load_sweep_config(
                    master_config=self.config, sweep_overrides=overrides + ["optuna_trial=0"])
            except Exception as exc:  # Hydra's config errors come in several types
                raise LabError(f"hydra.sweeper.params: {config_error(exc)} (with {' '.join(overrides)}); "
                               "search only keys and options that exist in conf/") from None
            with open_dict(cfg):
                del cfg["hydra"]
            build_stages(cfg)

    def _check_resumed_space(self, study: optuna.Study, space: Space) -> None:
        """Refuse to resume a study whose trials searched a parameter of this space as another kind or other
        choices: Optuna refuses it at the first trial that asks for it, in the middle of the sweep."""
        wanted = space.distributions()
        for trial in study.get_trials(deepcopy=False):
            for name, stored in trial.distributions.items():
                if name in wanted and not compatible(stored, wanted[name]):
                    raise LabError(f"hydra.sweeper.study_name={study.study_name!r} in {redact(self.storage)} searched "
                                   f"{name} as {stored}, not {wanted[name]}; pick another study_name for this space")

    def _reseed_on_resume(self, study: optuna.Study) -> None:
        """A resumed study gets its sampler seeded with ``seed + trials so far``.

        Re-seeding with the original seed would replay the first sweep's
        suggestions; offsetting keeps a resumed sweep deterministic and new.
        Concurrent workers should be given different ``hydra.sweeper.sampler.seed``.
        """
        node = self.config.hydra.sweeper.get("sampler")
        existing = len(study.get_trials(deepcopy=False))
        if existing and node is not None and node.get("seed") is not None:
            from hydra.utils import instantiate

            study.sampler = instantiate(node, seed=int(node.seed) + existing)

    def _run_trials(self, study: optuna.Study, space: Space) -> None:
        failures = launched = 0
        with progress(total=self.n_trials, desc=f"study {study.study_name}", unit="trial") as bar:
            bar.update(len(counted_trials(study)))
            while (remaining := self.n_trials - len(counted_trials(study))) > 0:
                failures, launched = self._run_batch(study, space, remaining, failures, launched)
                bar.update(len(counted_trials(study)) - bar.n)
                bar.set_postfix_str(_best_so_far(study))

    def _run_batch(self, study: optuna.Study, space: Space, remaining: int, failures: int,
                   launched: int) -> tuple[int, int]:
        """Ask for up to ``n_jobs`` trials, launch them and tell their outcomes; returns the running counts."""
        trials = []
        for _ in range(min(self.n_jobs, remaining)):
            trial = study.ask()
            trial.set_user_attr(WORKER_ATTR, process_token())
            trial.set_user_attr(FIXED_ATTR, space.shaping())
            ahead = sum(1 for t in counted_trials(study) if t.number <= trial.number)
            if ahead > self.n_trials:
                # a concurrent worker asked for the last slot first
                study.tell(trial, state=TrialState.FAIL)
                continue
            trials.append(trial)
        if not trials:
            return failures, launched
        # no validate_batch_is_legal: _check_space built every option before the first trial, and composing
        # each batch again cost a trial a third of its time
        try:
            batch = [space.overrides(trial) + [f"optuna_trial={trial.number}"] for trial in trials]
            returns = self.launcher.launch(batch, initial_job_idx=launched)
        except BaseException:
            for trial in trials:
                study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        launched += len(batch)
        for trial, job_return in zip(trials, returns):
            state, values, reason = job_outcome(job_return, len(self.directions))
            if state == TrialState.FAIL:
                failures += 1
                log.warning("trial %d failed: %s", trial.number, reason)
                trial.set_user_attr(FAILURE_ATTR, reason[:2000])
            study.tell(trial, values, state=state)
        # a share of the trials the sweep runs, not of those launched so far: one early failure among many
        # trials to come is within a budget of 25 %
        if failures > self.max_failure_rate * self.n_trials:
            raise LabError(f"{failures} of {launched} trials failed, more than "
                           f"hydra.sweeper.max_failure_rate={self.max_failure_rate} of hydra.sweeper.n_trials="
                           f"{self.n_trials}; see the failed MLflow runs for the errors")
        return failures, launched

    def _parent_run(self):
        """(tracker, run id) of the sweep's MLflow parent run, when the multirun callback made one."""
        run_id = parent_run_id(self.config.hydra.sweep.dir)
        return None if run_id is None else (build(self.config.logger, "logger"), run_id)

    def _log_study(self, study: optuna.Study, objectives: list[str], tracker, run_id: str) -> None:
        from src.sweep.summary import study_figures, study_summary

        params, metrics, tables = study_summary(study, objectives, self.storage)
        figures = study_figures(study, objectives)
        tracker.log_study(run_id, params=params, metrics=metrics, tables=tables, figures=figures,
                          tags={"mlflow.runName": f"study {study.study_name}", "optuna.study": study.study_name})
        for figure in figures.values():
            figure.clf()

    def _log_best(self, study: optuna.Study) -> None:
        if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            log.warning("study %s has no complete trial", study.study_name)
            return
        for trial in study.best_trials:
            log.info("best trial %d: values %s, params %s", trial.number, trial.values, trial.params)
