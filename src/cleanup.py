"""``python -m src.cleanup [overrides]``: end FAILED the MLflow runs whose process died without ending them.

A run left RUNNING by a process that was killed (``kill -9``), crashed or
lost power is recognised by its ``lab.process`` tag; every run and sweep
does this on start too. The store is the one ``logger.tracking_uri`` (or
``MLFLOW_TRACKING_URI``) names, as for ``src.run``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from src.errors import LabError
from src.run import build
from src.urls import redact

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


def main(overrides: list[str]) -> int:
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
    except Exception as exc:  # Hydra's override and config errors come in several types
        raise LabError(f"overrides {' '.join(overrides)!r}: {' '.join(str(exc).split())[:300]}") from None
    tracker = build(cfg.logger, "logger")
    tracker.check()
    closed = tracker.close_stale_runs()
    print(f"ended {len(closed)} stale run(s) FAILED in {redact(tracker.tracking_uri)}"
          + (f": {', '.join(closed)}" if closed else ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except LabError as exc:
        sys.exit(redact(f"error: {exc}"))
