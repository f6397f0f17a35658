"""Studies across processes: parallel trials on SQLite, stopped and killed sweeps, two workers on PostgreSQL."""

import collections
import os
import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest
import sqlalchemy.exc

from src.sweep.sweeper import FAILURE_ATTR, WORKER_ATTR, counted_trials
from tests.helpers import ROOT, cli, mlflow_store, only_run


def sweep_args(tmp_path, synthetic_root, storage, *overrides):
    return ["-m", "hparams_search=kmeans_dice", f"data.root={synthetic_root}", f"hydra.sweeper.storage={storage}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}", *overrides]


def children_by_trial(tracking_uri):
    runs = only_run(tracking_uri)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return collections.Counter(int(r.data.tags["optuna.trial"]) for r in children), children


def test_parallel_trials_share_the_sqlite_stores(tmp_path, synthetic_root):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    proc = cli(tmp_path, *sweep_args(tmp_path, synthetic_root, storage, "hydra.sweeper.n_trials=6",
                                     "hydra.sweeper.n_jobs=2", "workers=auto"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    study = optuna.load_study(study_name="kmeans_dice", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6
    per_trial, children = children_by_trial(f"sqlite:///{tmp_path / 'cli.db'}")
    assert per_trial == {n: 1 for n in range(6)}
    assert {r.info.status for r in children} == {"FINISHED"}
    # workers=auto: each of the two trials at once gets half the cores
    cores = len(os.sched_getaffinity(0))
    assert {r.data.tags["workers"] for r in children} == {str(max(1, cores // 2))}


def test_trials_of_a_killed_sweeper_are_run_again(tmp_path, synthetic_root):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="kmeans_dice", storage=storage, direction="maximize")
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    cut_off = study.ask({"clusterer.n_clusters": optuna.distributions.IntDistribution(6, 24, step=2)})
    cut_off.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{done.stdout.strip()}")
    proc = cli(tmp_path, *sweep_args(tmp_path, synthetic_root, storage, "hydra.sweeper.n_trials=2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = optuna.load_study(study_name="kmeans_dice", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert FAILURE_ATTR not in trials[0].user_attrs
    assert "cut off by a stopped sweep" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_two_workers_share_one_study_on_postgresql(tmp_path, synthetic_root, postgres):
    n_trials = 12
    storage, tracking = f"{postgres}/optuna", f"{postgres}/mlflow"
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking)
    workers = [subprocess.Popen(
        [sys.executable, "-m", "src.run",
         *sweep_args(tmp_path / f"w{i}", synthetic_root, storage, f"hydra.sweeper.n_trials={n_trials}",
                     f"hydra.sweeper.sampler.seed={i}", "logger.log_images=false"),
         f"paths.mlruns_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (_, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="kmeans_dice", storage=storage)
    counted = counted_trials(study)
    assert len(counted) == n_trials and {t.state.name for t in counted} == {"COMPLETE"}
    # both workers took part, and every trial ran exactly once with its own MLflow run
    assert len({t.user_attrs[WORKER_ATTR] for t in counted}) == 2
    per_trial, children = children_by_trial(tracking)
    assert per_trial == {t.number: 1 for t in counted}
    assert {r.info.status for r in children} == {"FINISHED"}
    parents = [r for r in only_run(tracking) if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 2 and {r.info.status for r in parents} == {"FINISHED"}


def trials_so_far(storage):
    """The study's trials, or none while the sweep is still creating its database or study."""
    try:
        return optuna.load_study(study_name="kmeans_dice", storage=storage).trials
    except (KeyError, sqlalchemy.exc.SQLAlchemyError):
        return []


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL])
def test_a_stopped_sweep_continues_where_it_stopped(tmp_path, synthetic_root, signal_number):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = [sys.executable, "-m", "src.run",
            *sweep_args(tmp_path, synthetic_root, storage, "hydra.sweeper.n_trials=6", "logger.log_images=false"),
            f"paths.mlruns_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_store(tmp_path / "cli.db"))
    first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
        trials = trials_so_far(storage)
        if sum(t.state.name == "COMPLETE" for t in trials) >= 2 and trials[-1].state.name == "RUNNING":
            break
    assert first.poll() is None, "the sweep ended before it could be stopped"
    first.send_signal(signal_number)
    first.wait(timeout=60)
    before = {t.number: t.params for t in optuna.load_study(study_name="kmeans_dice", storage=storage).trials
              if t.state.name == "COMPLETE"}
    again = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    study = optuna.load_study(study_name="kmeans_dice", storage=storage)
    counted = counted_trials(study)
    assert len(counted) == 6 and {t.state.name for t in counted} == {"COMPLETE"}
    assert all(study.trials[n].params == params for n, params in before.items())   # nothing finished was lost
    cut_off = [t for t in study.trials if t not in counted]
    assert cut_off and all(t.state.name == "FAIL" and FAILURE_ATTR not in t.user_attrs for t in cut_off)
    if signal_number == signal.SIGINT:
        # the interrupted sweep's parent run is ended, never left RUNNING (KILLED; FAILED when the interrupt
        # surfaced as another error, e.g. inside a database call)
        parents = [r for r in only_run(env["MLFLOW_TRACKING_URI"]) if "mlflow.parentRunId" not in r.data.tags]
        statuses = sorted(r.info.status for r in parents)
        assert statuses in (["FINISHED", "KILLED"], ["FAILED", "FINISHED"])


def running_children(tracking_uri):
    try:
        return [r for r in only_run(tracking_uri) if "mlflow.parentRunId" in r.data.tags and r.info.status == "RUNNING"]
    except Exception:  # the store or its experiment is not made yet
        return []


@pytest.mark.parametrize("sweep_kind", ["optuna", "basic"])
@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_sweep_with_parallel_jobs_leaves_no_run_running(tmp_path, synthetic_root, sweep_kind,
                                                                  signal_number):
    """The signal goes to the sweep's process alone (as ``timeout`` sends it): its job processes, ended with it,
    cannot end their runs, so the sweep does, and its parent's."""
    if sweep_kind == "optuna":
        overrides = sweep_args(tmp_path, synthetic_root, f"sqlite:///{tmp_path / 'optuna.db'}",
                               "hydra.sweeper.n_trials=40", "hydra.sweeper.n_jobs=2")
    else:
        overrides = ["-m", f"data.root={synthetic_root}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                     "hydra.launcher.n_jobs=2", "clusterer.n_clusters=" + ",".join(map(str, range(4, 44)))]
    tracking = mlflow_store(tmp_path / "cli.db")
    sweeping = subprocess.Popen([sys.executable, "-m", "src.run", *overrides, "logger.log_images=false",
                                 f"paths.mlruns_dir={tmp_path}", f"paths.cache_dir={tmp_path / 'cache'}"],
                                cwd=ROOT, env=dict(os.environ, MLFLOW_TRACKING_URI=tracking),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sweeping.poll() is None and not running_children(tracking):
        time.sleep(0.1)
    assert sweeping.poll() is None, "the sweep ended before it could be stopped"
    sweeping.send_signal(signal_number)
    _, err = sweeping.communicate(timeout=60)
    assert sweeping.returncode == 128 + signal_number, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    runs = only_run(tracking)
    assert "RUNNING" not in {r.info.status for r in runs}
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert parent.info.status == "KILLED" and parent.data.tags["error"].startswith("the sweep was stopped")
    assert parent.data.tags["mlflow.runName"] == ("study kmeans_dice" if sweep_kind == "optuna"
                                                  else "sweep clusterer.n_clusters=" + ",".join(map(str, range(4, 44))))
    assert "KILLED" in {r.info.status for r in runs if r is not parent}
