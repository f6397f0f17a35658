"""Shared fixtures: the generated synthetic dataset, real frames when FOOTBALL_DATA is set, composed configs."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import src.compose  # noqa: F401  registers the project_root resolver
from src.data import ensure_synthetic_dataset, write_video
from tests.helpers import CONF_DIR, mlflow_store


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Six generated frames in the Kaggle layout, the last with no players."""
    return ensure_synthetic_dataset(tmp_path_factory.mktemp("data") / "synthetic", n_images=6)


@pytest.fixture(scope="session")
def video_encoder():
    """``write_video(path, images, fps=25, *, seconds=None, container_format=None)``, for tests that make clips."""
    return write_video


@pytest.fixture(scope="session")
def tiny_video(tmp_path_factory) -> Path:
    """Three 64x48 frames of green with a red block, as an mp4."""
    images = [np.zeros((48, 64, 3), np.uint8) for _ in range(3)]
    for i, image in enumerate(images):
        image[:] = (40, 130, 40)
        image[10:30, 10 + 8 * i:18 + 8 * i] = (200, 30, 30)
    return write_video(tmp_path_factory.mktemp("video") / "tiny.mp4", images)


@pytest.fixture(scope="session")
def football_root() -> Path:
    root = os.environ.get("FOOTBALL_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("FOOTBALL_DATA is not set to the real frames")
    return Path(root)


@pytest.fixture(scope="session")
def real_cache_dir(tmp_path_factory) -> Path:
    """One feature cache for the runs on the real frames: they share CNN features (keyed by frame and config)."""
    return tmp_path_factory.mktemp("real-cache")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """Untrained models of every conf/model option, saved where the learned feature sets look for them."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from src.models import model_name
    from src.models.checkpoint import model_folder, save_model

    folder = tmp_path_factory.mktemp("models")
    for path in sorted(Path(CONF_DIR, "model").glob("*.yaml")):
        spec = OmegaConf.load(path)
        model = instantiate(spec)
        kwargs = {key: value for key, value in OmegaConf.to_container(spec).items() if key != "_target_"}
        save_model(model, model_folder(folder, model), name=model_name(model), kwargs=kwargs, task=model.task)
    return folder


def _composer(config_name: str, tmp_path: Path, synthetic_root: Path, models_dir: Path):
    def _make(*overrides: str, data_root: Path | None = None, return_hydra_config: bool = False,
              cache_dir: Path | None = None):
        GlobalHydra.instance().clear()
        # a video has a path, not a root
        base = [] if "data=video" in overrides else [f"data.root={data_root or synthetic_root}"]
        base += [
            f"paths.mlruns_dir={tmp_path / 'mlruns'}",
            f"paths.cache_dir={cache_dir or tmp_path / 'cache'}",
            f"paths.models_dir={models_dir}",
            f"logger.tracking_uri={mlflow_store(tmp_path / 'mlruns' / 'mlflow.db')}",
        ]
        if config_name == "config" and not any(o.startswith("workers=") for o in overrides):
            # one process per run: a worker pool's start costs more than the few frames of a test
            base.append("workers=1")
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose(config_name=config_name, overrides=base + list(overrides),
                           return_hydra_config=return_hydra_config)
    return _make


@pytest.fixture
def make_cfg(tmp_path, synthetic_root, models_dir):
    """Compose the root config with overrides, data on the synthetic set and MLflow in tmp_path."""
    yield _composer("config", tmp_path, synthetic_root, models_dir)
    GlobalHydra.instance().clear()


@pytest.fixture
def make_train_cfg(tmp_path, synthetic_root, models_dir):
    """Compose the training config (conf/train.yaml) the same way; trained models go to tmp_path/trained."""
    make = _composer("train", tmp_path, synthetic_root, models_dir)
    yield lambda *overrides, **kwargs: make(f"out_dir={tmp_path / 'trained'}", *overrides, **kwargs)
    GlobalHydra.instance().clear()


def find_postgres_bin(name):
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on a free loopback port; yields the URL prefix for its databases."""
    initdb = find_postgres_bin("initdb")
    if initdb is None:
        message = "PostgreSQL is not installed (Debian: apt-get install postgresql; .ci/run does this)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    bin_dir = os.path.dirname(os.path.realpath(initdb))
    base = tempfile.mkdtemp(prefix="lab-postgres-")
    # the server refuses to run as root, so it runs as the postgres account when there is one
    as_user = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = os.path.join(base, "data")

    def pg(*args):
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    pg(initdb, "-D", data, "-U", "lab", "--auth=trust", "-E", "UTF8")
    pg(os.path.join(bin_dir, "pg_ctl"), "-D", data, "-l", os.path.join(base, "log"), "-w", "-o",
       f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start")
    try:
        for database in ("optuna", "mlflow"):
            pg(os.path.join(bin_dir, "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "lab", database)
        yield f"postgresql://lab@127.0.0.1:{port}"
    finally:
        pg(os.path.join(bin_dir, "pg_ctl"), "-D", data, "-m", "fast", "stop")
        shutil.rmtree(base, ignore_errors=True)
