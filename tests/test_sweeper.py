"""The Optuna sweeper: search-space grammar, study handling, and real sweeps through the CLI."""

import json
import math
import re
import shutil
from pathlib import Path

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from src.errors import LabError
from src.sweep.sweeper import (
    FAILURE_ATTR,
    OptunaSweeper,
    Space,
    SweepError,
    distribution,
    interrupted,
    objective_values,
    open_study,
    parse_space,
)
from tests.helpers import cli, load, only_run, sweep


def dist(line):
    return distribution(OverridesParser.create().parse_override(line))


@pytest.mark.parametrize("line, expected", [
    ("k=choice(4, 8, 12)", CategoricalDistribution([4, 8, 12])),
    ("clusterer=choice(kmeans, dbscan)", CategoricalDistribution(["kmeans", "dbscan"])),
    ("k=range(4, 20, 4)", IntDistribution(4, 16, step=4)),
    ("w=range(0.0, 1.0, 0.25)", FloatDistribution(0.0, 0.75, step=0.25)),
    ("w=interval(0.1, 2.0)", FloatDistribution(0.1, 2.0)),
    ("k=tag(int, interval(2, 30))", IntDistribution(2, 30)),
    ("k=tag(int, log, interval(2, 64))", IntDistribution(2, 64, log=True)),
    ("lr=tag(log, interval(0.001, 1.0))", FloatDistribution(0.001, 1.0, log=True)),
])
def test_override_grammar_maps_to_optuna(line, expected):
    assert dist(line) == expected


@pytest.mark.parametrize("params, message", [
    ({"k": "choice()"}, r"k='choice\(\)' cannot be parsed: .*empty choice is not legal"),
    ({"k": "interval(3, 1)"}, r"interval\(3.0, 1.0\) is empty; give low < high"),
    ({"k": "range(5, 1)"}, r"yields no value"),
    ({"k": "choice(1,"}, r"cannot be parsed"),
    # Optuna's own checks, named as the space's
    ({"w": "tag(log, interval(0, 1))"}, r"^hydra.sweeper.params.w: w=tag\(log, interval\(0, 1\)\) is not a search "
                                        r"range: .*"),
    ({"k": "tag(log, range(1, 10, 2))"}, r"^hydra.sweeper.params.k: .* is not a search range: "),
    ({"k": "tag(int, interval(0.2, 0.8))"}, r"^hydra.sweeper.params.k: .* is not a search range: "),
    ({"k": "range(1, 5, 0)"}, r"^hydra.sweeper.params.k: k=range\(1, 5, 0\) has step 0; give a non-zero step$"),
])
def test_bad_search_space_is_one_line(params, message):
    with pytest.raises(LabError, match=message):
        parse_space(params)


def test_fixed_values_pass_through_and_conditions_need_a_swept_key():
    space, fixed = parse_space({"a": "choice(1, 2)", "b": "3"})
    assert list(space) == ["a"] and fixed == {"b": "3"}
    with pytest.raises(LabError, match="conditions must be"):
        Space.from_config({"a": "choice(1, 2)"}, {"z=1": {"c": "interval(0, 1)"}})


def test_conditional_parameters_only_when_their_branch_is_taken():
    space = Space.from_config({"clusterer": "choice(kmeans, hdbscan)"},
                              {"clusterer=kmeans": {"clusterer.n_clusters": "range(4, 9, 2)"},
                               "clusterer=hdbscan": {"clusterer.min_cluster_size": "range(10, 50, 10)"}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        overrides = space.overrides(study.ask())
        chosen = dict(o.split("=") for o in overrides)
        expected = {"kmeans": "clusterer.n_clusters", "hdbscan": "clusterer.min_cluster_size"}[chosen["clusterer"]]
        assert set(chosen) == {"clusterer", expected}
        seen.add(chosen["clusterer"])
    assert seen == {"kmeans", "hdbscan"}


@pytest.mark.parametrize("choices, condition, taken", [
    ("choice(true, false)", "true", True), ("choice(true, false)", "false", False), ("choice(1, 2)", "1", 1),
    ("choice(0.5, 1.0)", "1.0", 1.0), ("choice(lab, rgb)", "rgb", "rgb")])
def test_a_branch_is_taken_when_the_key_takes_its_value(choices, condition, taken):
    space = Space.from_config({"x": choices}, {f"x={condition}": {"w": "interval(0.1, 1.0)"}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    branches = set()
    for _ in range(16):
        trial = study.ask()
        chosen = dict(o.split("=") for o in space.overrides(trial))
        assert ("w" in chosen) == (trial.params["x"] == taken and type(trial.params["x"]) is type(taken))
        branches.add("w" in chosen)
    assert branches == {True, False}


@pytest.mark.parametrize("params, conditional, message", [
    ({"x": "choice(true, false)"}, {"x=yes": {"w": "interval(0, 1)"}},
     r"^hydra.sweeper.conditional has 'x=yes', but x takes \[True, False\]; condition on one of its choices$"),
    ({"x": "choice(1, 2)"}, {"x=true": {"w": "interval(0, 1)"}}, r"'x=true', but x takes \[1, 2\]"),
    ({"x": "interval(0, 1)"}, {"x=0.5": {"w": "interval(0, 1)"}}, r"'x=0.5', but x takes a range"),
    ({"x": "choice(a, b)"}, {"x=a": {"w": "choice(1, 2)"}, "x=b": {"w": "choice(1, 3)"}},
     r"^hydra.sweeper.conditional\['x=b'\] searches w as .*, another space than .*; Optuna keeps one per name"),
])
def test_conditions_the_space_cannot_meet_are_one_line(params, conditional, message):
    with pytest.raises(LabError, match=message):
        Space.from_config(params, conditional)


def test_a_resumed_study_over_another_space_is_refused_before_any_trial(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    study = open_study("s", storage, ["maximize"], None, None)
    first = Space.from_config({"k": "choice(1, 2)", "w": "interval(0, 1)"}, {})
    trial = study.ask()
    first.overrides(trial)
    study.tell(trial, 0.5)
    sweeper = OptunaSweeper(study_name="s", storage=storage)
    # a float range may move; its kind and a choice list may not
    sweeper._check_resumed_space(study, Space.from_config({"k": "choice(1, 2)", "w": "interval(0.2, 3)"}, {}))
    for changed in ({"k": "choice(1, 2, 3)"}, {"w": "tag(log, interval(0.1, 1))"}, {"k": "range(1, 3)"}):
        with pytest.raises(LabError, match=r"^hydra.sweeper.study_name='s' in sqlite:///.* searched [kw] as .*, "
                                           r"not .*; pick another study_name for this space$"):
            sweeper._check_resumed_space(study, Space.from_config({**{"k": "choice(1, 2)", "w": "interval(0, 1)"},
                                                                   **changed}, {}))


class _FailedJob:
    @property
    def return_value(self):
        raise RuntimeError("boom")


class _FailingLauncher:
    def launch(self, batch, initial_job_idx):
        return [_FailedJob() for _ in batch]


def test_the_failure_budget_is_a_share_of_the_studys_trials():
    sweeper = OptunaSweeper(n_trials=8, max_failure_rate=0.25)
    sweeper.launcher = _FailingLauncher()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    space = Space.from_config({"k": "choice(1, 2)"}, {})
    # a failure in the first trial is within a budget of 2 of 8 trials, the third is not
    assert sweeper._run_batch(study, space, 8, 0, 0) == (1, 1)
    assert sweeper._run_batch(study, space, 7, 1, 1) == (2, 2)
    with pytest.raises(LabError, match=r"^3 of 3 trials failed, more than hydra.sweeper.max_failure_rate=0.25 of "
                                       r"hydra.sweeper.n_trials=8; "):
        sweeper._run_batch(study, space, 6, 2, 2)
    assert [t.state.name for t in study.trials] == ["FAIL"] * 3


@pytest.mark.parametrize("settings, message", [
    ({"storage": None}, r"^error: hydra.sweeper.storage=None is not allowed; a study needs a name and an RDB storage"),
    ({"study_name": ""}, r"^error: hydra.sweeper.study_name='' is not allowed"),
])
def test_a_study_without_name_or_storage_is_refused_at_setup(settings, message):
    sweeper = OptunaSweeper(**{"study_name": "s", "storage": "sqlite:///x.db", **settings})
    with pytest.raises(SweepError, match=message):
        sweeper.setup(hydra_context=None, task_function=None, config=None)


@pytest.mark.parametrize("workers, threads, message", [
    ("two", 1, r"^workers='two' must be an integer"), ("auto", "abc", r"^threads='abc' must be an integer")])
def test_workers_and_threads_are_checked_before_the_core_count(workers, threads, message):
    sweeper = OptunaSweeper()
    sweeper.config = OmegaConf.create({"workers": workers, "threads": threads})
    with pytest.raises(LabError, match=message):
        sweeper._check_cores()


def test_an_interrupt_is_recognised_through_the_errors_it_caused():
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise RuntimeError("session rolled back")  # noqa: B904  the interrupt must stay its context
    except RuntimeError as exc:
        assert interrupted(exc)
    assert not interrupted(ValueError("x"))


@pytest.mark.parametrize("value, n, expected", [
    (0.5, 1, [0.5]), ((0.5, 0.1), 2, [0.5, 0.1]), (float("nan"), 1, None), ((0.5,), 2, None), ("x", 1, None),
])
def test_objective_values(value, n, expected):
    assert objective_values(value, n) == expected


def test_study_with_other_directions_and_unreachable_storage(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    open_study("s", storage, ["maximize"], None, None)
    with pytest.raises(LabError, match=r"exists in .* with directions \['maximize'\], not \['minimize'\]"):
        open_study("s", storage, ["minimize"], None, None)
    with pytest.raises(LabError, match=r"hydra.sweeper.storage='postgresql://nobody@127.0.0.1:1/x' cannot be used"):
        open_study("s", "postgresql://nobody@127.0.0.1:1/x", ["maximize"], None, None)
    with pytest.raises(LabError, match=r"direction='up' is not allowed"):
        open_study("t", storage, ["up"], None, None)


def error_line(proc):
    """The one-line error of a failed sweep (Hydra adds its HYDRA_FULL_ERROR hint after it)."""
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    return lines[-1] if lines else proc.stderr[-2000:]


def test_sweep_runs_trials_and_resumes_where_it_stopped(tmp_path, synthetic_root):
    first = sweep(tmp_path, synthetic_root, "hydra.sweeper.n_trials=3")
    assert first.returncode == 0, first.stderr[-3000:]
    study = load(tmp_path, "kmeans_dice")
    assert len(study.trials) == 3 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert all(0.0 <= t.value <= 1.0 for t in study.trials)
    again = sweep(tmp_path, synthetic_root, "hydra.sweeper.n_trials=5")
    assert again.returncode == 0, again.stderr[-3000:]
    study = load(tmp_path, "kmeans_dice")
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert {t.state.name for t in study.trials} == {"COMPLETE"}
    # a resumed sampler does not replay the first sweep's suggestions
    assert study.trials[3].params != study.trials[0].params
    # every trial keeps all its metrics, whatever the objective
    for trial in study.trials:
        assert trial.user_attrs["metrics"]["dice_mean"] == trial.value
        assert {"silhouette_mean", "inertia_mean", "seconds_per_image"} <= set(trial.user_attrs["metrics"])


def test_parent_run_holds_the_study_summary(tmp_path, synthetic_root):
    proc = sweep(tmp_path, synthetic_root, "hydra.sweeper.n_trials=3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = load(tmp_path, "kmeans_dice")
    parents, children = runs_of(tmp_path)
    assert len(parents) == 1 and sorted(children) == [0, 1, 2]
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name == "study kmeans_dice"
    assert parent.data.params["study_name"] == "kmeans_dice"
    assert parent.data.params["directions"] == "maximize"
    assert parent.data.metrics["best_dice_mean"] == pytest.approx(study.best_value)
    assert parent.data.params["best.clusterer.n_clusters"] == str(study.best_params["clusterer.n_clusters"])
    artifacts = Path(parent.info.artifact_uri.removeprefix("file://"))
    assert {"trials.json", "pareto_front.json", "optimization_history.png", "param_importances.png"} <= {
        p.name for p in artifacts.iterdir()}
    table = json.loads((artifacts / "trials.json").read_text())
    assert table["data"] and len(table["data"]) == 3


@pytest.fixture
def broken_root(tmp_path, synthetic_root):
    """The fixture dataset with one image file overwritten by garbage: runs fail while decoding, not before."""
    root = shutil.copytree(synthetic_root, tmp_path / "broken")
    next((root / "images").glob("*.jpg")).write_bytes(b"not a jpeg")
    return root


def sweep_on(tmp_path, data_root, *overrides):
    return cli(tmp_path, "-m", "hparams_search=kmeans_dice", f"data.root={data_root}", "data.scale=16",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
               *overrides)


def runs_of(tmp_path):
    runs = only_run(f"sqlite:///{tmp_path / 'cli.db'}")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {int(r.data.tags["optuna.trial"]): r for r in runs if "mlflow.parentRunId" in r.data.tags}
    return parents, children


def test_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path, synthetic_root, broken_root):
    proc = cli(tmp_path, "-m", "hparams_search=kmeans_dice", f"data.root=choice({synthetic_root},{broken_root})",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
               "hydra.sweeper.n_trials=6", "hydra.sweeper.max_failure_rate=1.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = load(tmp_path, "kmeans_dice").trials
    states = {(t.params["data.root"], t.state.name) for t in trials}
    assert states == {(str(synthetic_root), "COMPLETE"), (str(broken_root), "FAIL")}
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert all("cannot be read" in t.user_attrs[FAILURE_ATTR] for t in failed)
    parents, children = runs_of(tmp_path)
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert {children[t.number].info.status for t in failed} == {"FAILED"}
    assert parents[0].data.metrics["trials_fail"] == len(failed)


def test_failure_budget_stops_the_sweep(tmp_path, broken_root):
    proc = sweep_on(tmp_path, broken_root, "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=0.0")
    assert proc.returncode != 0
    assert "max_failure_rate=0.0" in error_line(proc)
    parents, _ = runs_of(tmp_path)
    assert [p.info.status for p in parents] == ["FAILED"]


@pytest.mark.parametrize("lower, state, status", [(1.01, "PRUNED", "KILLED"), (0.0, "COMPLETE", "FINISHED")])
def test_pruner_stops_trials_from_their_intermediate_dice(tmp_path, synthetic_root, lower, state, status):
    proc = sweep_on(tmp_path, synthetic_root, "hydra.sweeper.n_trials=2", "hydra.sweeper.report_every=2",
                    "+hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
                    f"+hydra.sweeper.pruner.lower={lower}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = load(tmp_path, "kmeans_dice").trials
    assert [t.state.name for t in trials] == [state] * 2
    # six frames, reported every two: a trial below the threshold stops at its first report
    expected_steps = [2] if state == "PRUNED" else [2, 4, 6]
    assert all(sorted(t.intermediate_values) == expected_steps for t in trials)
    _, children = runs_of(tmp_path)
    assert {r.info.status for r in children.values()} == {status}


def test_multi_objective_study_keeps_a_pareto_front(tmp_path, synthetic_root):
    proc = cli(tmp_path, "-m", "hparams_search=dice_speed", f"data.root={synthetic_root}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
               "hydra.sweeper.n_trials=3", "data.scale=choice(4,8)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = load(tmp_path, "dice_speed")
    assert all(len(t.values) == 2 and all(math.isfinite(v) for v in t.values) for t in study.trials)
    assert 1 <= len(study.best_trials) <= 3
    parents, _ = runs_of(tmp_path)
    assert parents[0].data.metrics["pareto_size"] == len(study.best_trials)
    artifacts = Path(parents[0].info.artifact_uri.removeprefix("file://"))
    front = json.loads((artifacts / "pareto_front.json").read_text())
    assert front["columns"][:3] == ["number", "dice_mean", "seconds_per_image"]
    assert sorted(row[0] for row in front["data"]) == sorted(t.number for t in study.best_trials)
    assert (artifacts / "pareto_front.png").is_file()


@pytest.mark.parametrize("bad, message", [
    # named by the command line's key check, before the sweeper's build of the search space
    ("clusterer.no_such_key=choice(1,2)", r"error: clusterer.no_such_key=choice\(1,2\): clusterer has no key "),
    ("clusterer=choice(kmeans,no_such_clusterer)", r"hydra.sweeper.params: .*no_such_clusterer"),
    ("clusterer.n_clusters=choice(8,0)", r"clusterer.n_clusters=0 is out of range"),
    ("data.root=/no/such/folder", r"data.root='/no/such/folder' is not a folder"),
    ("objective=[dice_mean,iou_mean]", r"has 2 value\(s\) but hydra.sweeper.direction=\['maximize'\] has 1"),
    # more processes than cores: each trial is slower than with fewer
    ("workers=512", r"hydra.sweeper.n_jobs=1 x workers=512 x threads=1 keeps 512 cores busy"),
    # checked when Hydra sets the sweeper up, not in its constructor, whose errors Hydra wraps in lines of its own
    ("hydra.sweeper.n_trials=-2", r"^error: hydra.sweeper.n_trials=-2 is out of range; allowed \[1, inf\]$"),
])
def test_unknown_search_keys_fail_before_any_trial(tmp_path, synthetic_root, bad, message):
    proc = sweep(tmp_path, synthetic_root, "hydra.sweeper.n_trials=2", bad)
    assert proc.returncode != 0
    assert re.search(message, error_line(proc)), proc.stderr[-2000:]
    assert "Error in call to target" not in proc.stderr
    assert not (tmp_path / "optuna.db").exists() or not load(tmp_path, "kmeans_dice").trials
    parents, children = runs_of(tmp_path)
    if "has no key" in message:
        # refused on the command line, before Hydra starts the multirun and its parent run
        assert parents == [] and not children
        return
    assert [p.info.status for p in parents] == ["FAILED"] and not children
    assert parents[0].data.tags["error"].startswith("the sweep failed: ")


@pytest.mark.parametrize("bad, message", [
    ("clusterer=kmeans,no_such_clusterer",
     r"error: clusterer=no_such_clusterer: In 'config': Could not find 'clusterer/no_such_clusterer' Available "
     r"options in 'clusterer': agglomerative .* slic_kmeans$"),
    ("clusterer.n_clusters=3,-1", r"error: clusterer.n_clusters=-1 is out of range; allowed \[2, inf\]$"),
    ("clusterer.n_clusterz=3,4", r"error: clusterer.n_clusterz=3,4: clusterer has no key 'n_clusterz'; .*did you "
                                 r"mean n_clusters\?$"),
    # an unwritable store once hung the sweep, waiting for the lock of a database it could never create
    ("logger.tracking_uri=sqlite:////proc/lab/mlflow.db", r"error: logger.tracking_uri=sqlite:////proc/lab/mlflow.db "
                                                          r"cannot be used: "),
])
def test_a_bad_value_of_a_basic_sweep_fails_in_one_line_before_any_job(tmp_path, synthetic_root, bad, message):
    proc = cli(tmp_path, "-m", f"data.root={synthetic_root}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
               *bad.split(), "clusterer.n_clusters=3,4" if "n_clusters=" not in bad else "seed=0")
    assert proc.returncode == 1
    assert re.match(message, proc.stderr.strip().splitlines()[-1]), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not (tmp_path / "sweep" / "0").exists()
    assert only_run(f"sqlite:///{tmp_path / 'cli.db'}") == []


def test_a_study_in_a_folder_not_made_yet_is_created(tmp_path):
    storage = f"sqlite:///{tmp_path / 'new' / 'mlruns' / 'optuna.db'}"
    study = open_study("fresh", storage, ["maximize"], None, None)
    assert study.study_name == "fresh" and (tmp_path / "new" / "mlruns" / "optuna.db").is_file()
