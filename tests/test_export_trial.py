"""Saving a trial as an experiment: the YAML it writes and a single run that repeats the trial."""

import re
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution

from src.sweep.export_trial import experiment_yaml, main, search_space_base
from src.sweep.trial import FIXED_ATTR, SPACE_ATTR
from tests.helpers import CONF_DIR, cli, load, sweep


def test_params_become_nested_values_and_group_choices_become_overrides():
    trial = optuna.trial.create_trial(
        params={"clusterer": "dbscan", "clusterer.eps": 1.5, "features.blocks.position.weight": 0.25},
        distributions={"clusterer": CategoricalDistribution(["kmeans", "dbscan"]),
                       "clusterer.eps": FloatDistribution(1.0, 3.0),
                       "features.blocks.position.weight": FloatDistribution(0.0, 1.0)},
        value=0.8)
    base = {"defaults": ["override /features: resnet", "override /clusterer: kmeans"], "values": {"data.scale": 4}}
    text = experiment_yaml(trial, "study", "tuned", base, groups={"clusterer", "features"})
    assert text.startswith("# @package _global_\n")
    body = yaml.safe_load(text)
    assert body["defaults"] == [{"override /features": "resnet"}, {"override /clusterer": "dbscan"}]
    assert body["task_name"] == "tuned"
    assert body["clusterer"] == {"eps": 1.5}
    assert body["features"] == {"blocks": {"position": {"weight": 0.25}}}
    assert body["data"] == {"scale": 4}


def test_an_exported_group_choice_composes(tmp_path):
    from hydra import compose, initialize_config_dir

    trial = optuna.trial.create_trial(params={"clusterer": "dbscan", "clusterer.eps": 1.5},
                                      distributions={"clusterer": CategoricalDistribution(["kmeans", "dbscan"]),
                                                     "clusterer.eps": FloatDistribution(1.0, 3.0)}, value=0.8)
    folder = tmp_path / "extra" / "experiment"
    folder.mkdir(parents=True)
    base = {"defaults": ["override /postprocess: noise_players"], "values": {}}
    (folder / "tuned.yaml").write_text(experiment_yaml(trial, "study", "tuned", base))
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"hydra.searchpath=[file://{tmp_path / 'extra'}]",
                                                       "experiment=tuned"])
    assert cfg.clusterer._target_.endswith("DBSCANClusterer") and cfg.clusterer.eps == 1.5
    assert "noise" in cfg.postprocess.steps


def test_dropped_keys_stay_out_of_the_experiment(tmp_path, monkeypatch):
    import src.sweep.export_trial as export

    storage = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_int("clusterer.n_clusters", 2, 8), n_trials=1)
    monkeypatch.setattr(export, "search_space_base", lambda name, space=None: {
        "defaults": [], "values": {"data.n_images": 20, "data.seed": 1, "clusterer.fit_sample": 500}})
    out = tmp_path / "x.yaml"
    main(["s", "x", "--storage", storage, "--out", str(out), "--drop", "data"])
    body = yaml.safe_load(out.read_text())
    assert "data" not in body and body["clusterer"]["fit_sample"] == 500
    assert body["clusterer"]["n_clusters"] == study.best_trial.params["clusterer.n_clusters"]


def test_exported_best_trial_repeats_its_value_in_one_run(tmp_path, synthetic_root):
    # a fixed override of the sweep's command line shapes every trial, so the experiment carries it
    proc = sweep(tmp_path, synthetic_root, "hydra.sweeper.n_trials=2", "features.blocks.color.space=rgb")
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = load(tmp_path, "kmeans_dice").best_trial
    assert load(tmp_path, "kmeans_dice").user_attrs[SPACE_ATTR] == "kmeans_dice"
    assert best.user_attrs[FIXED_ATTR] == {"features.blocks.color.space": "rgb"}
    out = tmp_path / "extra" / "experiment" / "tuned.yaml"
    main(["kmeans_dice", "tuned", "--storage", f"sqlite:///{tmp_path / 'optuna.db'}", "--out", str(out)])
    assert yaml.safe_load(out.read_text())["features"]["blocks"]["color"]["space"] == "rgb"
    run = cli(tmp_path, "--config-dir", str(tmp_path / "extra"), "experiment=tuned", f"data.root={synthetic_root}",
              f"hydra.run.dir={tmp_path / 'run'}")
    assert run.returncode == 0, run.stderr[-3000:]
    dice = float(re.search(r"mean Dice (\d\.\d+)", run.stdout + run.stderr).group(1))
    assert dice == pytest.approx(best.value, abs=5e-5)


def test_bad_trial_numbers_and_studies_are_one_line(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    study.enqueue_trial({"k": 4})
    study.optimize(lambda t: t.suggest_int("k", 2, 8), n_trials=1)
    with pytest.raises(SystemExit, match=r"--trial=7 is not a trial of 's' \(it has 1, complete: 1\)"):
        main(["s", "x", "--storage", storage, "--trial", "7", "--out", str(tmp_path / "x.yaml")])
    with pytest.raises(SystemExit, match=r"study='nope' is not in"):
        main(["nope", "x", "--storage", storage, "--out", str(tmp_path / "x.yaml")])
    assert not (tmp_path / "x.yaml").exists()


def test_list_choices_are_exported_as_lists():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from src.sweep.sweeper import distribution

    choices = distribution(OverridesParser.create().parse_override("backbone.out_indices=choice([1], [1,2])"))
    trial = optuna.trial.create_trial(params={"backbone.out_indices": choices.choices[1]},
                                      distributions={"backbone.out_indices": choices}, value=0.5)
    body = yaml.safe_load(experiment_yaml(trial, "s", "x", groups={"backbone"}))
    assert body["backbone"] == {"out_indices": [1, 2]}


def test_fixed_overrides_are_recorded_without_places():
    from src.sweep.sweeper import Space

    space = Space.from_config({"k": "choice(1, 2)", "data.root": "/frames", "hydra.sweep.dir": "/out", "seed": "3",
                               "+note": "x", "workers": "2", "logger.tracking_uri": "sqlite:///m.db",
                               "postprocess": "players_enclosed"}, {})
    assert space.shaping() == {"seed": "3", "+note": "x", "postprocess": "players_enclosed"}


def test_bad_storage_trial_and_out_are_one_line(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    with pytest.raises(SystemExit, match=r"^error: --storage='sqlite:///.*/o.db' is not a file; give the storage "):
        main(["s", "x", "--storage", storage])
    assert not (tmp_path / "o.db").exists()
    study = optuna.create_study(study_name="s", storage=storage)
    with pytest.raises(SystemExit, match=r"^error: study 's' has no COMPLETE trial \(it has 0\); finish its sweep"):
        main(["s", "x", "--storage", storage])
    study.optimize(lambda t: t.suggest_int("k", 2, 8), n_trials=2)
    with pytest.raises(SystemExit, match="2"):  # argparse's usage error
        main(["s", "x", "--storage", storage, "--trial", "-1"])
    with pytest.raises(SystemExit, match=r"^error: --out='.*' cannot be written: "):
        main(["s", "x", "--storage", storage, "--space", "none", "--out", str(tmp_path)])


def test_outputs_a_sweep_skips_are_not_exported():
    """kmeans_dice's trials write no mask images (data.write_masks: false); the experiment made of one does."""
    assert "data.write_masks" not in search_space_base("kmeans_dice")["values"]
    spec = Path(CONF_DIR, "hparams_search", "kmeans_dice.yaml")
    assert "write_masks: false" in spec.read_text()


def test_a_renamed_study_exports_the_fixed_settings_of_the_space_it_records(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    study = optuna.create_study(study_name="my_dbscan", storage=storage)
    study.optimize(lambda t: t.suggest_float("clusterer.eps_scale", 1.0, 2.0), n_trials=1)
    out = tmp_path / "x.yaml"
    # a study that records no space, under a name no space file has, would lose the space's settings
    with pytest.raises(SystemExit, match=r"study 'my_dbscan' records no search space and no conf/hparams_search "
                                         r"file names it; give the file it was swept with as --space NAME"):
        main(["my_dbscan", "x", "--storage", storage, "--out", str(out)])
    assert not out.exists()
    with pytest.raises(SystemExit, match=r"--space='dbscan' is not a file of conf/hparams_search; choose one of"):
        main(["my_dbscan", "x", "--storage", storage, "--out", str(out), "--space", "dbscan"])
    study.set_user_attr(SPACE_ATTR, "dbscan_cnn")
    main(["my_dbscan", "x", "--storage", storage, "--out", str(out)])
    body = yaml.safe_load(out.read_text())
    assert {"override /features": "resnet"} in body["defaults"]
    assert {"override /clusterer": "dbscan"} in body["defaults"]
    main(["my_dbscan", "x", "--storage", storage, "--out", str(out), "--space", "none"])
    assert "defaults" not in yaml.safe_load(out.read_text())
