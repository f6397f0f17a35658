"""What several test modules share: the project's folders, the lab's command line, a sweep, a store's runs.

Test modules import from here, never from one another.
"""

from __future__ import annotations

import functools
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from src.postprocess import MaskState

ROOT = Path(__file__).resolve().parents[2]
# a string, as Hydra's initialize_config_dir takes it
CONF_DIR = str(ROOT / "conf")


# removed when the process exits
_SCRATCH = tempfile.TemporaryDirectory(prefix="lab-tests-")


@functools.cache
def _empty_store() -> Path:
    """An MLflow SQLite store with its schema and no runs, made once per test process."""
    import mlflow

    path = Path(_SCRATCH.name) / "empty-mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def mlflow_store(path: Path) -> str:
    """The ``sqlite:///`` URI of an MLflow store at ``path``; a new store there is a copy of an empty one.

    MLflow makes a new store's schema by running its migrations, over a second
    a store, and the suite makes about a hundred stores. Tests of how the lab
    creates a store pass a URI of their own instead.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # the backup API copies a consistent database even while MLflow keeps the empty store open
        source, target = sqlite3.connect(_empty_store()), sqlite3.connect(path)
        try:
            source.backup(target)
        finally:
            source.close()
            target.close()
    return f"sqlite:///{path}"


def cli(tmp_path, *args, cache_dir=None):
    """``python -m src.run ARGS`` in a fresh process, its MLflow store and caches in ``tmp_path`` (or ``cache_dir``)."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_store(tmp_path / "cli.db"))
    return subprocess.run([sys.executable, "-m", "src.run", *args, f"paths.mlruns_dir={tmp_path}",
                           f"paths.cache_dir={cache_dir or tmp_path / 'cache'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def sweep(tmp_path, synthetic_root, *overrides):
    """The ``kmeans_dice`` Optuna sweep on ``synthetic_root``, its study in ``tmp_path/optuna.db``."""
    return cli(tmp_path, "-m", "hparams_search=kmeans_dice", f"data.root={synthetic_root}",
               f"hydra.sweep.dir={tmp_path / 'sweep'}", f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",
               *overrides)


def load(tmp_path, name):
    """The study ``name`` that ``sweep`` stored in ``tmp_path``."""
    import optuna

    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")


def only_run(tracking_uri):
    """The runs of the lab's experiment in the store at ``tracking_uri``."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.search_runs(experiment_names=["football-players"], output_format="list")


def copy_dataset(src, dst):
    """A copy of a dataset folder, for a test that damages it."""
    shutil.copytree(src, dst)
    return dst


def mask_state(mask):
    """A post-processing state for steps that read only the mask: zero labels and a black image of its shape."""
    return MaskState(labels=np.zeros(mask.shape, int), image=np.zeros((*mask.shape, 3), np.uint8), mask=mask)
