"""Runs the lab's fault cases as a user would meet them and prints what each leaves behind.

Usage: ``.venv/bin/python experiments/fault_injection.py [--write]`` (about 3 minutes on 2 cores).
Every case runs ``python -m src.run`` (or ``src.cleanup``) in a fresh folder on
the generated synthetic frames and reports: its exit code, the last line it
printed to stderr (the line the user sees), the MLflow runs it left RUNNING,
and files left half-written (artifacts of runs that did not finish, ``*.tmp``
files). ``--write`` also writes the table to ``experiments/FAULTS.md``.
Cases that need root (a tmpfs for a full disk, a read-only mount) are
reported as skipped elsewhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import mlflow  # noqa: E402

from src.data import ensure_synthetic_dataset  # noqa: E402
from src.urls import sqlite_path, store_lock  # noqa: E402
from src.files import write_text_whole  # noqa: E402

PASSWORD = "s3cr3t-Pa55"
SLOW = ["clusterer=dynaseg", "clusterer.iterations=100000", "clusterer.stop=threshold", "clusterer.min_labels=2",
        "clusterer.mu_mode=fixed", "clusterer.threads=1"]


def lab(folder: Path, args: list[str], uri: str, data: Path | None = None, module: str = "src.run"):
    """Start ``python -m module`` for one case; data and stores live in ``folder``."""
    # the run's outputs under the case's folder, where src.cleanup looks for what a killed run left
    extra = [f"paths.root_dir={folder}"] if module != "src.run" else [
        f"data.root={data}", f"paths.mlruns_dir={folder / 'mlruns'}", f"paths.cache_dir={folder / 'cache'}",
        f"hydra.run.dir={folder / 'outputs' / 'run'}"]
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri)
    env.pop("CI", None)
    return subprocess.Popen([sys.executable, "-m", module, *args, *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def runs(uri: str) -> list:
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        return []  # nothing was stored; opening it would create it (or retry for minutes where it cannot be)
    try:
        # the lab's processes may be creating the store: read it under the same lock
        with store_lock(uri):
            mlflow.set_tracking_uri(uri)
            return mlflow.search_runs(search_all_experiments=True, output_format="list")
    except Exception:  # no store was created, or it cannot be read
        return []


def wait_running(uri: str, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r.info.status == "RUNNING" for r in runs(uri)):
            return
        time.sleep(0.2)


def edit_annotations(data: Path, folder: Path, edit) -> Path:
    """A copy of the synthetic dataset whose annotation file went through ``edit``."""
    import shutil

    copy = folder / "data"
    shutil.copytree(data, copy)
    path = copy / "annotations" / "instances_default.json"
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))
    return copy


def first_annotation(content: dict) -> dict:
    return content["annotations"][0]


def mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def case_race(folder, data):
    uri = f"sqlite:///{folder / 'fresh.db'}"
    procs = [lab(folder / str(i), ["data.n_images=2", "logger.log_images=false"], uri, data) for i in range(4)]
    outs = [p.communicate() for p in procs]
    worst = max(range(4), key=lambda i: procs[i].returncode)
    return procs[worst].returncode, outs[worst][1], uri, f"{sum(p.returncode == 0 for p in procs)}/4 finished"


def case_annotation(edit):
    def run_case(folder, data):
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        proc = lab(folder, ["data.strict=true"] if edit is orphan else [], uri, edit_annotations(data, folder, edit))
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            return "hang", "still running after 60 s", uri, ""
        return proc.returncode, err, uri, ""
    return run_case


def orphan(content):
    content["annotations"].append({**first_annotation(content), "id": 9999, "image_id": 4242})


def case_signal(sig):
    def run_case(folder, data):
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        proc = lab(folder, SLOW, uri, data)
        wait_running(uri, proc)
        proc.send_signal(sig)
        _, err = proc.communicate()
        note = ""
        if sig == signal.SIGKILL:
            left = sum(r.info.status == "RUNNING" for r in runs(uri))
            cleanup = lab(folder, [], uri, module="src.cleanup")
            out, _ = cleanup.communicate()
            note = f"{left} RUNNING after kill -9; `src.cleanup`: " + "; ".join(
                line.split(":")[0] for line in out.strip().splitlines())
        return proc.returncode, err, uri, note
    return run_case


def case_store(uri_of, needs_mount=None):
    def run_case(folder, data):
        uri = uri_of(folder)
        if needs_mount is not None and not needs_mount(folder):
            return "skipped", "needs root to mount", uri, ""
        try:
            proc = lab(folder, [], uri, data)
            _, err = proc.communicate(timeout=300)
        finally:
            if needs_mount is not None:
                subprocess.run(["umount", "-l", str(folder / "mnt")], capture_output=True)
        return proc.returncode, err, uri, ""
    return run_case


def read_only(folder):
    (folder / "mnt").mkdir()
    from src.tracking import MLflowTracker

    MLflowTracker(f"sqlite:///{folder / 'mnt' / 'mlflow.db'}").check()
    return mount("--bind", str(folder / "mnt"), str(folder / "mnt")) and \
        mount("-o", "remount,bind,ro", str(folder / "mnt"))


def case_full_disk(folder, data):
    (folder / "mnt").mkdir()
    if not mount("-t", "tmpfs", "-o", "size=200k", "tmpfs", str(folder / "mnt")):
        return "skipped", "needs root to mount a tmpfs", "", ""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    try:
        proc = lab(folder, ["data.scale=1", f"logger.artifact_location={folder / 'mnt'}"], uri, data)
        _, err = proc.communicate()
        left = sum(1 for p in (folder / "mnt").rglob("*") if p.is_file())
    finally:
        subprocess.run(["umount", "-l", str(folder / "mnt")], capture_output=True)
    return proc.returncode, err, uri, f"{left} files on the full disk"


def case_secret(kind):
    def run_case(folder, data):
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        secret_url = f"postgresql://lab:{PASSWORD}@127.0.0.1:1/db"
        args = ["-m", "hparams_search=kmeans_dice", f"hydra.sweeper.storage={secret_url}",
                f"hydra.sweep.dir={folder / 'sweep'}"] if kind == "storage" else []
        proc = lab(folder, args, secret_url if kind == "tracking" else uri, data)
        out, err = proc.communicate(timeout=300)
        leaked = PASSWORD in out + err or any(PASSWORD.encode() in p.read_bytes() for p in folder.rglob("*")
                                              if p.is_file())
        return proc.returncode, err, uri, "password LEAKED" if leaked else "password masked everywhere"
    return run_case


CASES = [
    ("4 first runs at once on a new SQLite store", case_race),
    ("RLE counts '!!!notrle'", case_annotation(
        lambda c: first_annotation(c).update(segmentation={"size": [1080, 1920], "counts": "!!!notrle"}))),
    ("segmentation 'garbage'", case_annotation(lambda c: first_annotation(c).update(segmentation="garbage"))),
    ("polygon of odd length", case_annotation(lambda c: first_annotation(c).update(segmentation=[[1, 2, 3, 4, 5, 6, 7]]))),
    ("annotation without segmentation", case_annotation(lambda c: first_annotation(c).pop("segmentation"))),
    ("RLE of the wrong size", case_annotation(
        lambda c: first_annotation(c).update(segmentation={"size": [10, 10], "counts": [100]}))),
    ("annotation without id", case_annotation(lambda c: first_annotation(c).pop("id"))),
    ("image width 'wide'", case_annotation(lambda c: c["images"][0].update(width="wide"))),
    ("annotation of an unknown image, data.strict=true", case_annotation(orphan)),
    ("image over the decompression-bomb limit", case_annotation(
        lambda c: c["images"][0].update(width=20000, height=20000))),
    ("password in an unreachable MLFLOW_TRACKING_URI", case_secret("tracking")),
    ("password in an unreachable study storage", case_secret("storage")),
    ("SIGTERM in the middle of a run", case_signal(signal.SIGTERM)),
    ("Ctrl-C (SIGINT) in the middle of a run", case_signal(signal.SIGINT)),
    ("kill -9 in the middle of a run", case_signal(signal.SIGKILL)),
    ("disk full while artifacts are written", case_full_disk),
    ("tracking store sqlite:////proc/mlflow.db", case_store(lambda f: "sqlite:////proc/mlflow.db")),
    ("read-only tracking store", case_store(lambda f: f"sqlite:///{f / 'mnt' / 'mlflow.db'}", read_only)),
]


def half_written(folder: Path, uri: str) -> int:
    """Files of runs that did not finish, temporary files, and prediction folders a process left half-written
    (``src.cleanup`` removes those of dead processes), under ``folder``."""
    count = sum(1 for p in folder.rglob("*.tmp") if p.is_file())
    count += sum(1 for p in folder.rglob(".predictions.partial-*/**/*") if p.is_file())
    for r in runs(uri) if uri else []:
        if r.info.status != "FINISHED":
            artifacts = Path(r.info.artifact_uri.removeprefix("file://"))
            count += sum(1 for p in artifacts.rglob("*") if p.is_file()) if artifacts.is_dir() else 0
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="also write experiments/FAULTS.md (else print only)")
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = ensure_synthetic_dataset(Path(tmp) / "synthetic", n_images=6)
        for index, (name, case) in enumerate(CASES):
            folder = Path(tmp) / f"case{index}"
            folder.mkdir()
            start = time.perf_counter()
            code, err, uri, note = case(folder, data)
            # the line meant for the user: an error or stop line, past MLflow's and Hydra's own notes
            lines = [line for line in err.strip().splitlines() if line.strip() and " INFO " not in line
                     and "HYDRA_FULL_ERROR" not in line]
            ours = [line for line in lines if line.startswith(("error:", "src.run:"))]
            seen = (ours or lines or [""])[-1]
            running = sum(r.info.status == "RUNNING" for r in runs(uri)) if uri else 0
            # the run's folder, and any temporary folder the case made (a mounted small disk), differ every run
            shown = re.sub(r"/tmp/tmp\w+", "$TMP", seen.replace(tmp, "$TMP")).replace("|", "\\|")
            rows.append((name, code, shown, running,
                         half_written(folder, uri) if uri else 0, note, time.perf_counter() - start))
            print(f"{name}: exit {code}, {running} RUNNING, {rows[-1][4]} half-written, {rows[-1][6]:.1f} s",
                  file=sys.stderr)
    table = ["| case | exit | the line the user sees | runs left RUNNING | files half-written | note | s |",
             "|---|---|---|---|---|---|---|"]
    table += [f"| {n} | {c} | `{s[:220]}` | {r} | {h} | {note} | {t:.1f} |" for n, c, s, r, h, note, t in rows]
    print("\n".join(table))
    if args.write:
        write_text_whole(ROOT / "experiments" / "FAULTS.md",
            f"# Fault cases\n\nWritten by `experiments/fault_injection.py --write` on {date.today()}; each case runs "
            "the CLI in a fresh folder on the synthetic frames.\n\n" + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
