"""Shared fixtures: the generated synthetic dataset, real frames when FOOTBALL_DATA is set, composed configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import src.run  # noqa: F401  registers the project_root resolver
from src.data import ensure_synthetic_dataset

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """Six generated frames in the Kaggle layout, the last with no players."""
    return ensure_synthetic_dataset(tmp_path_factory.mktemp("data") / "synthetic", n_images=6)


@pytest.fixture(scope="session")
def football_root() -> Path:
    root = os.environ.get("FOOTBALL_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("FOOTBALL_DATA is not set to the real frames")
    return Path(root)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    """Untrained models of every conf/model option, saved where the learned feature sets look for them."""
    from omegaconf import OmegaConf

    from src.models import create_model
    from src.models.checkpoint import save_model

    folder = tmp_path_factory.mktemp("models")
    for path in sorted(Path(CONF_DIR, "model").glob("*.yaml")):
        spec = OmegaConf.load(path)
        kwargs = OmegaConf.to_container(spec.kwargs)
        save_model(create_model(spec.name, **kwargs), folder / f"{spec.name}_{spec.task}", name=spec.name,
                   kwargs=kwargs, task=spec.task)
    return folder


def _composer(config_name: str, tmp_path: Path, synthetic_root: Path, models_dir: Path):
    def _make(*overrides: str, data_root: Path | None = None, return_hydra_config: bool = False):
        GlobalHydra.instance().clear()
        base = [
            f"data.root={data_root or synthetic_root}",
            f"paths.mlruns_dir={tmp_path / 'mlruns'}",
            f"paths.cache_dir={tmp_path / 'cache'}",
            f"paths.models_dir={models_dir}",
            f"logger.tracking_uri=sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
        ]
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
