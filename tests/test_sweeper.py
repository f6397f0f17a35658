"""The Optuna sweeper: search-space grammar, study handling, and real sweeps through the CLI."""

import math

import optuna
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from src.errors import LabError
from src.sweeper import Space, distribution, objective_values, open_study, parse_space
from tests.test_run import cli


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


def sweep(tmp_path, synthetic_root, *overrides):
    return cli(tmp_path, "-m", "hparams_search=kmeans_dice", f"data.root={synthetic_root}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
               *overrides)


def load(tmp_path, name):
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")


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


def test_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path, synthetic_root):
    # k above the pixel count of the tiny frames fails some trials before any work
    proc = sweep(tmp_path, synthetic_root, "hydra.sweeper.n_trials=6", "data.scale=40",
                 "clusterer.n_clusters=choice(4,5000)", "hydra.sweeper.max_failure_rate=1.0",
                 "clusterer.fit_sample=null")
    assert proc.returncode == 0, proc.stderr[-3000:]
    states = {t.params["clusterer.n_clusters"]: t.state.name for t in load(tmp_path, "kmeans_dice").trials}
    assert states.get(5000) == "FAIL" and states.get(4) == "COMPLETE"


def test_failure_budget_stops_the_sweep(tmp_path, synthetic_root):
    proc = sweep(tmp_path, synthetic_root, "hydra.sweeper.n_trials=4", "data.scale=40",
                 "clusterer.n_clusters=choice(5000)", "hydra.sweeper.max_failure_rate=0.0",
                 "clusterer.fit_sample=null")
    assert proc.returncode != 0
    assert "max_failure_rate=0.0" in proc.stderr.strip().splitlines()[-1]


def test_multi_objective_study_keeps_a_pareto_front(tmp_path, synthetic_root):
    proc = cli(tmp_path, "-m", "hparams_search=dice_speed", f"data.root={synthetic_root}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
               "hydra.sweeper.n_trials=3", "data.scale=choice(4,8)")
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = load(tmp_path, "dice_speed")
    assert all(len(t.values) == 2 and all(math.isfinite(v) for v in t.values) for t in study.trials)
    assert 1 <= len(study.best_trials) <= 3
