"""The tracking store and the run's lifecycle under faults: races, signals, dead processes, full disks, secrets."""

import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from src.compose import build
from src.errors import LabError
from src.processes import process_token
from src.run import run
from src.tracking import MLflowTracker
from src.tracking.mlflow_tracker import PROCESS_TAG
from src.urls import RedactingFilter, redact, store_lock
from tests.helpers import ROOT, mlflow_store, only_run

FAKE_PASSWORD = "s3cr3t-Pa55"


def lab(*args, tracking_uri, timeout=300, wait=True, **popen):
    """``python -m <args>`` in the repo with ``MLFLOW_TRACKING_URI`` set."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri)
    command = [sys.executable, "-m", *args]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, **popen)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def run_args(tmp_path, synthetic_root, *overrides):
    return ["src.run", f"data.root={synthetic_root}", f"paths.mlruns_dir={tmp_path / 'mlruns'}",
            f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.run.dir={tmp_path / 'out'}", *overrides]


def runs_in(tracking_uri):
    """Every run of the store; read under the store's lock, since a lab process may be creating it."""
    with store_lock(tracking_uri):
        mlflow.set_tracking_uri(tracking_uri)
        return mlflow.search_runs(search_all_experiments=True, output_format="list")


# 1. a new SQLite store opened by several processes at once

def test_four_first_runs_on_a_new_store_all_finish(tmp_path, synthetic_root):
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    procs = [lab(*run_args(tmp_path / str(i), synthetic_root, "data.n_images=2", "logger.log_images=false"),
                 tracking_uri=uri, wait=False) for i in range(4)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
        assert "Traceback" not in err
    runs = runs_in(uri)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    import sqlite3
    tables = {row[0] for row in sqlite3.connect(tmp_path / "fresh" / "mlflow.db").execute(
        "select name from sqlite_master where type='table'")}
    assert not any(name.startswith("_alembic_tmp") for name in tables)


def integrity_error():
    """What MLflow raises when an insert breaks a unique key: an MlflowException from SQLAlchemy's error."""
    import sqlite3

    import sqlalchemy.exc
    cause = sqlalchemy.exc.IntegrityError("INSERT INTO datasets", {}, sqlite3.IntegrityError("UNIQUE constraint"))
    error = mlflow.exceptions.MlflowException(str(cause))
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("failures, logged", [(0, True), (1, True), (4, True), (5, False)])
def test_a_dataset_logged_by_a_concurrent_run_is_tried_again(make_cfg, monkeypatch, failures, logged):
    tracker = build(make_cfg().logger, "logger")
    tracker.check()
    real_log_input, calls = mlflow.log_input, []

    def collide_then_log(*args, **kwargs):
        calls.append(args)
        if len(calls) <= failures:
            raise integrity_error()
        return real_log_input(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", collide_then_log)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    with tracker.run({"a": 1}) as run_id:
        if logged:
            tracker.log_frames("football: 2 frames at scale 8", "/data", [{"image_id": "1", "file_name": "a.jpg"}])
        else:
            with pytest.raises(mlflow.exceptions.MlflowException, match="UNIQUE constraint"):
                tracker.log_frames("football: 2 frames", "/data", [{"image_id": "1", "file_name": "a.jpg"}])
    assert len(calls) == min(failures + 1, 5)
    assert len(mlflow.get_run(run_id).inputs.dataset_inputs) == int(logged)


def test_other_dataset_errors_are_not_tried_again(make_cfg, monkeypatch):
    tracker = build(make_cfg().logger, "logger")
    tracker.check()
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise mlflow.exceptions.MlflowException("Dataset input must have a dataset associated with it.")

    monkeypatch.setattr(mlflow, "log_input", refuse)
    with tracker.run({"a": 1}), pytest.raises(mlflow.exceptions.MlflowException, match="must have a dataset"):
        tracker.log_frames("football: 2 frames", "/data", [{"image_id": "1", "file_name": "a.jpg"}])
    assert len(calls) == 1


# 3. credentials never reach logs, errors, params, tags or artifacts

def test_redact_masks_url_passwords_and_token_queries():
    assert redact("postgresql://lab:hunter2@db:5432/x") == "postgresql://lab:***@db:5432/x"
    assert redact("postgresql+psycopg://u:p%40ss@h/db and mysql://a:b@c/d") == \
        "postgresql+psycopg://u:***@h/db and mysql://a:***@c/d"
    assert redact("https://host/api?token=abc&x=1&password=pw") == "https://host/api?token=***&x=1&password=***"
    assert redact("sqlite:////tmp/mlflow.db postgresql://lab@host/db") == "sqlite:////tmp/mlflow.db postgresql://lab@host/db"
    # SQLAlchemy reads a password up to the "@": it may hold "/" and quotes
    assert redact("postgresql://lab:se/cret@db:5432/optuna") == "postgresql://lab:***@db:5432/optuna"
    assert redact("storage='postgresql://lab:it's@db/x'") == "storage='postgresql://lab:***@db/x'"
    assert redact("https://ghp_TOKEN123@github.com/x http://user:pw@h/") == "https://***@github.com/x http://user:***@h/"
    # as Hydra shows overrides: colons escaped, and the backslashes doubled in a list's repr
    assert redact("#0 : logger.tracking_uri=postgresql\\://user\\:secret@localhost\\:1/db") == \
        "#0 : logger.tracking_uri=postgresql\\://user\\:***@localhost\\:1/db"
    assert redact("['logger.tracking_uri=postgresql\\\\://user\\\\:secret@h/db']") == \
        "['logger.tracking_uri=postgresql\\\\://user\\\\:***@h/db']"
    untouched = "http://127.0.0.1:5000/#/experiments/1 and a@b.c"
    assert redact(untouched) == untouched


def test_the_logging_filter_masks_messages_and_tracebacks():
    import logging
    try:
        raise RuntimeError(f"cannot reach postgresql://lab:{FAKE_PASSWORD}@h/db")
    except RuntimeError:
        import sys as _sys
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "store %s", (f"http://u:{FAKE_PASSWORD}@h",),
                                   _sys.exc_info())
    RedactingFilter().filter(record)
    assert FAKE_PASSWORD not in record.getMessage() and FAKE_PASSWORD not in record.exc_text


def test_an_unreachable_tracking_store_is_one_masked_line(tmp_path, synthetic_root):
    uri = f"postgresql://lab:{FAKE_PASSWORD}@127.0.0.1:1/mlflow"
    proc = lab(*run_args(tmp_path, synthetic_root), tracking_uri=uri, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: logger.tracking_uri=postgresql://lab:***@127.0.0.1:1/mlflow cannot be used: ")
    assert FAKE_PASSWORD not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr


def test_an_unreachable_tracking_server_is_one_masked_line_within_seconds(tmp_path, synthetic_root):
    """MLflow retries a tracking server that does not answer for minutes; the store check asks once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for command in (run_args(tmp_path, synthetic_root), ["src.cleanup"]):
        started = time.monotonic()
        proc = lab(*command, tracking_uri=f"https://{FAKE_PASSWORD}@127.0.0.1:{port}", timeout=120)
        assert time.monotonic() - started < 60
        assert proc.returncode == 1
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith(f"error: logger.tracking_uri=https://***@127.0.0.1:{port} cannot be used: "), line
        assert FAKE_PASSWORD not in proc.stderr + proc.stdout


def test_cleanup_of_a_store_that_does_not_exist_makes_none(tmp_path):
    database = tmp_path / "typo" / "mlflow.db"
    proc = lab("src.cleanup", tracking_uri=f"sqlite:///{database}", timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: logger.tracking_uri=sqlite:///{database} names no store ({database} does not exist); give the store "
        "your runs are in (MLFLOW_TRACKING_URI or logger.tracking_uri)"]
    assert not (tmp_path / "typo").exists()


def test_an_unreachable_study_storage_is_one_masked_line(tmp_path, synthetic_root):
    storage = f"postgresql://lab:{FAKE_PASSWORD}@127.0.0.1:1/optuna"
    proc = lab("src.run", "-m", "hparams_search=kmeans_dice", f"hydra.sweeper.storage={storage}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", *run_args(tmp_path, synthetic_root)[1:],
               tracking_uri=mlflow_store(tmp_path / "mlflow.db"), timeout=120)
    assert proc.returncode != 0
    assert "hydra.sweeper.storage='postgresql://lab:***@127.0.0.1:1/optuna' cannot be used" in proc.stderr
    assert FAKE_PASSWORD not in proc.stderr + proc.stdout
    assert not any(FAKE_PASSWORD in p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file()
                   and p.suffix != ".db")


def test_a_basic_sweep_over_a_url_with_a_password_writes_it_nowhere(tmp_path, synthetic_root):
    """Hydra shows and saves a multirun's overrides with their colons escaped (``postgresql\\://lab\\:pw@``):
    its log lines, ``multirun.yaml`` and each job's ``.hydra`` files are masked too."""
    tracking = mlflow_store(tmp_path / "mlflow.db")
    proc = lab("src.run", "-m", "clusterer.n_clusters=3,4", f"+note=postgresql://lab:{FAKE_PASSWORD}@db/x",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", *run_args(tmp_path, synthetic_root)[1:], tracking_uri=tracking)
    assert proc.returncode == 0, redact(proc.stderr[-3000:])
    assert "lab\\:***@db/x" in proc.stdout + proc.stderr and FAKE_PASSWORD not in proc.stdout + proc.stderr
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "multirun.yaml" for p in written) and any(p.name == "overrides.yaml" for p in written)
    assert [str(p) for p in written if FAKE_PASSWORD.encode() in p.read_bytes()] == []


@pytest.mark.slow
def test_a_sweep_on_password_urls_writes_the_password_nowhere(tmp_path, synthetic_root, postgres):
    """A sweep whose study and tracking stores are PostgreSQL URLs with a password (accepted by the trust-auth
    test server): no output file, log line, param, tag or artifact holds the password."""
    with_password = postgres.replace("postgresql://lab@", f"postgresql://lab:{FAKE_PASSWORD}@")
    tracking, storage = f"{with_password}/mlflow", f"{with_password}/optuna"
    proc = lab("src.run", "-m", "hparams_search=kmeans_dice", f"hydra.sweeper.storage={storage}",
               "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
               *run_args(tmp_path, synthetic_root)[1:], tracking_uri=tracking)
    assert proc.returncode == 0, redact(proc.stderr[-3000:])
    assert FAKE_PASSWORD not in proc.stdout + proc.stderr
    assert "lab:***@" in proc.stdout + proc.stderr
    runs = runs_in(tracking)
    assert len(runs) == 3
    for r in runs:
        for value in (*r.data.params.values(), *r.data.tags.values()):
            assert FAKE_PASSWORD not in value
        client = mlflow.MlflowClient(tracking)
        local = client.download_artifacts(r.info.run_id, "", str(tmp_path / "artifacts" / r.info.run_id))
        assert os.listdir(local)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "hydra.yaml" for p in written) and any(p.suffix == ".log" for p in written)
    leaks = [str(p) for p in written if FAKE_PASSWORD.encode() in p.read_bytes()]
    assert leaks == []


# 4. signals and dead processes

def slow_run(tmp_path, synthetic_root, uri):
    """A run that takes long enough to be stopped in the middle (DynaSeg, many iterations per frame)."""
    return lab(*run_args(tmp_path, synthetic_root, "clusterer=dynaseg", "clusterer.iterations=100000",
                         "clusterer.stop=threshold", "clusterer.min_labels=2", "clusterer.mu_mode=fixed",
                         "clusterer.threads=1"), tracking_uri=uri, wait=False)


def wait_for_running_run(uri, proc, timeout=120, exclude=()):
    """The RUNNING run (not one of ``exclude``) that ``proc`` started, polled for until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            runs = [r for r in runs_in(uri) if r.info.status == "RUNNING" and r.info.run_id not in exclude]
        except Exception:  # the store may still be being created
            runs = []
        if runs:
            return runs[0]
        time.sleep(0.2)
    raise AssertionError(f"no RUNNING run appeared; the process ended with {proc.poll()}")


@pytest.mark.parametrize("signal_number, status, name", [(signal.SIGTERM, 143, "SIGTERM"),
                                                         (signal.SIGINT, 130, "Ctrl-C")])
def test_sigterm_and_ctrl_c_end_the_run_killed_with_one_line(tmp_path, synthetic_root, signal_number, status, name):
    uri = mlflow_store(tmp_path / "mlflow.db")
    proc = slow_run(tmp_path, synthetic_root, uri)
    running = wait_for_running_run(uri, proc)
    proc.send_signal(signal_number)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-3000:]
    assert err.strip().splitlines()[-1] == f"src.run: stopped by {name}; its MLflow runs were ended KILLED"
    assert "Traceback" not in err
    assert mlflow.get_run(running.info.run_id).info.status == "KILLED"


def killed_run(tmp_path, synthetic_root, uri):
    """The id of a run whose process was killed with SIGKILL in the middle (left RUNNING)."""
    proc = slow_run(tmp_path, synthetic_root, uri)
    run_id = wait_for_running_run(uri, proc).info.run_id
    proc.kill()
    proc.communicate(timeout=60)
    assert mlflow.get_run(run_id).info.status == "RUNNING"
    return run_id


def test_a_run_of_a_killed_process_is_ended_failed_by_cleanup_and_by_the_next_run(tmp_path, synthetic_root):
    uri = mlflow_store(tmp_path / "mlflow.db")
    stale = killed_run(tmp_path / "a", synthetic_root, uri)
    cleaned = lab("src.cleanup", tracking_uri=uri, timeout=120)
    assert cleaned.returncode == 0, cleaned.stderr[-2000:]
    assert cleaned.stdout.strip().splitlines()[0] == f"ended 1 stale run(s) FAILED in {uri}: {stale}"
    info = mlflow.get_run(stale)
    assert info.info.status == "FAILED" and "ended without ending this run" in info.data.tags["error"]
    stale = killed_run(tmp_path / "b", synthetic_root, uri)
    after = lab(*run_args(tmp_path / "next", synthetic_root, "data.n_images=1", "logger.log_images=false"),
                tracking_uri=uri)
    assert after.returncode == 0, after.stderr[-2000:]
    assert mlflow.get_run(stale).info.status == "FAILED"
    assert f"ended 1 MLflow run(s) of dead processes as FAILED: {stale}" in after.stdout + after.stderr


def store_and_dead_process(make_cfg):
    """A checked tracker on a new store, its client and experiment, and the process token of a process of
    this host that has ended."""
    cfg = make_cfg()
    tracker = build(cfg.logger, "logger")
    tracker.check()
    client = mlflow.MlflowClient(cfg.logger.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.logger.experiment_name).experiment_id
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True)
    return tracker, client, experiment, f"{socket.gethostname()}:{finished.stdout.strip()}:1"


def test_cleanup_removes_the_prediction_folders_of_dead_processes_only(tmp_path):
    from src.cleanup import remove_partial_outputs

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    dead = tmp_path / "outputs" / "segment" / "t1" / f".predictions.partial-{ended.pid}"
    alive = tmp_path / "multirun" / "segment" / "t2" / "0" / f".predictions.partial-{os.getpid()}"
    finished = tmp_path / "outputs" / "segment" / "t3" / "predictions"
    for folder in (dead, alive, finished):
        folder.mkdir(parents=True)
        (folder / "components.csv").write_text("frame\n")
    assert remove_partial_outputs([tmp_path / "outputs", tmp_path / "multirun", tmp_path / "none"]) == [dead]
    assert not dead.exists() and alive.is_dir() and finished.is_dir()


def test_only_runs_of_dead_processes_of_this_host_are_ended(make_cfg):
    tracker, client, experiment, dead_token = store_and_dead_process(make_cfg)
    dead = client.create_run(experiment, tags={PROCESS_TAG: dead_token})
    kept = [client.create_run(experiment, tags={PROCESS_TAG: token}).info.run_id
            for token in ("some-other-host:1:1", process_token())] + [client.create_run(experiment).info.run_id]
    assert tracker.close_stale_runs() == [dead.info.run_id]
    assert {client.get_run(i).info.status for i in kept} == {"RUNNING"}


def test_stale_runs_are_looked_for_by_the_first_run_of_a_process_in_a_store(make_cfg, monkeypatch):
    tracker, client, experiment, dead_token = store_and_dead_process(make_cfg)
    first_dead = client.create_run(experiment, tags={PROCESS_TAG: dead_token}).info.run_id
    searches = []
    real_close = MLflowTracker.close_stale_runs
    monkeypatch.setattr(MLflowTracker, "close_stale_runs", lambda self: searches.append(1) or real_close(self))
    with tracker.run({"a": 1}):
        pass
    assert client.get_run(first_dead).info.status == "FAILED"
    # a sweep's later trials in this process do not search the store again
    later_dead = client.create_run(experiment, tags={PROCESS_TAG: dead_token}).info.run_id
    for _ in range(3):
        with tracker.run({"a": 1}):
            pass
    assert len(searches) == 1
    assert client.get_run(later_dead).info.status == "RUNNING"


# 6. a full disk while artifacts are written

def test_a_failed_artifact_upload_leaves_nothing_and_the_run_failed(make_cfg, monkeypatch):
    cfg = make_cfg()
    real_copy, copied = shutil.copy2, []

    def copy_until_full(src, dst, *args, **kwargs):
        if len(copied) == 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        copied.append(dst)
        return real_copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(shutil, "copy2", copy_until_full)
    with pytest.raises(LabError, match=r"could not be written to .* \(OSError: \[Errno 28\] No space left on device"
                                       r".*\); none was kept, and the run is FAILED"):
        run(cfg)
    assert len(copied) == 5
    (failed,) = only_run(cfg.logger.tracking_uri)
    assert failed.info.status == "FAILED" and "No space left on device" in failed.data.tags["error"]
    artifacts = Path(failed.info.artifact_uri.removeprefix("file://"))
    assert not artifacts.exists() or not any(artifacts.rglob("*"))


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KiB tmpfs (needs root, as CI runs); yields its folder."""
    folder = tmp_path / "small_disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_real_full_disk_leaves_no_partial_artifacts(make_cfg, small_disk):
    cfg = make_cfg("data.scale=1", f"logger.artifact_location={small_disk}")
    with pytest.raises(LabError, match=r"No space left on device.*none was kept, and the run is FAILED"):
        run(cfg)
    (failed,) = only_run(cfg.logger.tracking_uri)
    assert failed.info.status == "FAILED"
    assert not any(p.is_file() for p in small_disk.rglob("*"))


# 7. an unwritable store fails before any work, in one line

def test_an_unusable_tracking_store_is_one_line_before_any_work(tmp_path, synthetic_root):
    proc = lab(*run_args(tmp_path, synthetic_root), tracking_uri="sqlite:////proc/mlflow.db", timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: logger.tracking_uri=sqlite:////proc/mlflow.db cannot be used: OperationalError: unable to open "
        "database file; point MLFLOW_TRACKING_URI (or logger.tracking_uri) at a writable store")
    assert not (tmp_path / "cache").exists()  # no frame was decoded, no feature cached


def test_a_read_only_store_is_one_line(tmp_path, synthetic_root):
    folder = tmp_path / "ro"
    folder.mkdir()
    uri = mlflow_store(folder / "mlflow.db")
    MLflowTracker(uri).check()  # a store with the experiment, then the disk turns read-only
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot remount read-only here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        proc = lab(*run_args(tmp_path, synthetic_root), tracking_uri=uri, timeout=120)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: logger.tracking_uri={uri} cannot be used: ")
    assert "read-only" in last.lower() or "readonly" in last.lower()


# 2 and 5, end to end: a malformed annotation file is refused before a run exists

def test_a_malformed_rle_is_refused_before_any_run(tmp_path, synthetic_root):
    import json
    root = tmp_path / "data"
    shutil.copytree(synthetic_root, root)
    path = root / "annotations" / "instances_default.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["segmentation"] = {"size": [1080, 1920], "counts": "!!!notrle"}
    path.write_text(json.dumps(data))
    uri = mlflow_store(tmp_path / "mlflow.db")
    proc = lab(*run_args(tmp_path, root), tracking_uri=uri, timeout=120)
    assert proc.returncode == 1
    assert "outside the RLE alphabet '0'..'o'; fix or remove the annotation" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "mlflow.db").exists() or runs_in(uri) == []
