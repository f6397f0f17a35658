"""``python -m src.cleanup [overrides]``: end FAILED the MLflow runs whose process died without ending them.

A run left RUNNING by a process that was killed (``kill -9``), crashed or
lost power is recognised by its ``lab.process`` tag; every run and sweep
does this on start too. The store is the one ``logger.tracking_uri`` (or
``MLFLOW_TRACKING_URI``) names, as for ``src.run``. The prediction folders
such a process was writing (``.predictions.partial-<pid>`` in its output
folder under ``outputs/`` or ``multirun/``) are removed too.
"""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

from src.compose import build_tracker, load_config
from src.errors import LabError
from src.processes import is_dead
from src.urls import redact, sqlite_path

PARTIAL_PREFIX = ".predictions.partial-"


def remove_partial_outputs(roots: list[Path]) -> list[Path]:
    """Remove the half-written prediction folders under ``roots`` whose process on this host has died."""
    removed = []
    for root in roots:
        for folder in sorted(root.rglob(f"{PARTIAL_PREFIX}*")) if root.is_dir() else []:
            pid = folder.name.removeprefix(PARTIAL_PREFIX)
            if folder.is_dir() and pid.isdigit() and is_dead(f"{socket.gethostname()}:{pid}"):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def main(overrides: list[str]) -> int:
    cfg = load_config(overrides)
    database = sqlite_path(cfg.logger.tracking_uri)
    if database is not None and not database.is_file():
        # opening it would create an empty store, and report it clean
        raise LabError(f"logger.tracking_uri={redact(cfg.logger.tracking_uri)} names no store ({database} does not "
                       "exist); give the store your runs are in (MLFLOW_TRACKING_URI or logger.tracking_uri)")
    tracker = build_tracker(cfg)
    closed = tracker.close_stale_runs()
    print(f"ended {len(closed)} stale run(s) FAILED in {redact(tracker.tracking_uri)}"
          + (f": {', '.join(closed)}" if closed else ""))
    root = Path(cfg.paths.root_dir)
    removed = remove_partial_outputs([root / "outputs", root / "multirun"])
    print(f"removed {len(removed)} half-written prediction folder(s) of dead processes"
          + (f": {', '.join(str(p) for p in removed)}" if removed else ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except LabError as exc:
        sys.exit(redact(f"error: {exc}"))
