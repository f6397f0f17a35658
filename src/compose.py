"""The composition layer: the config in, built and checked stages out.

Entry points (``src.run``, ``src.train``, ``src.benchmark``, ``src.ui``,
``src.cleanup``) and the sweeper (``src.sweep``) build through here and never
import each other. Importing this module registers the config resolvers
(``${project_root:}``, ``${first_folder:...}``) that ``conf/`` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.errors import LabError, check_choice, check_range
from src.tracking import PARENT_RUN_FILE
from src.urls import redact

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
# the first of a list of folders that exists (null if none): where the real frames are found
OmegaConf.register_new_resolver(
    "first_folder", lambda folders: next((str(Path(f).resolve()) for f in folders if Path(f).is_dir()), None),
    replace=True)


@dataclass(frozen=True)
class Stages:
    """The built stages of one configuration, in the order data flows through them, and the tracker."""

    data: Any
    features: Any
    clusterer: Any
    postprocess: Any
    logger: Any


def build(node: DictConfig, option: str):
    """Instantiate a config node from its ``_target_``; bad values become one-line LabErrors."""
    try:
        return hydra.utils.instantiate(node, _convert_="partial")
    except hydra.errors.InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, LabError):
            raise cause from None
        raise LabError(f"{option}: {str(cause or exc).splitlines()[0]}") from None


def load_config(overrides: list[str], config_name: str = "config") -> DictConfig:
    """The root config composed with ``overrides``, for commands outside ``@hydra.main`` (no output folder)."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    except Exception as exc:  # Hydra's override and config errors come in several types
        raise LabError(f"overrides {' '.join(overrides)!r}: {' '.join(str(exc).split())[:300]}") from None


def objective_names(objective: str | Sequence[str]) -> list[str]:
    """The configured ``objective`` as a list: one summary key, or several for a multi-objective sweep."""
    return [objective] if isinstance(objective, str) else list(objective)


def build_stages(cfg: DictConfig) -> Stages:
    """Build and check data, features, clusterer, postprocess and tracker; nothing runs yet."""
    from src.pipeline import SUMMARY_KEYS

    for name in objective_names(cfg.objective):
        check_choice("objective", name, SUMMARY_KEYS)
    check_range("silhouette_sample", cfg.silhouette_sample, 2, integer=True)
    if cfg.threads is not None:
        check_range("threads", cfg.threads, 1, integer=True)
    check_range("workers", cfg.workers, 1, integer=True)
    logger = build(cfg.logger, "logger")
    features = build(with_local_artifacts(cfg.features, logger), "features")
    clusterer = build(cfg.clusterer, "clusterer")
    postprocess = build(cfg.postprocess, "postprocess")
    data = build(cfg.data, "data")
    check_input = getattr(clusterer, "check_input", None)
    if check_input is not None:
        # a stream's frames are not known before decoding; they all have the stream's size
        sizes = [data.image_size(i) for i in data.image_ids] or [data.image_size()]
        check_input(min(w * h for w, h in sizes))
    logger.check()
    return Stages(data=data, features=features, clusterer=clusterer, postprocess=postprocess, logger=logger)


def with_local_artifacts(node: DictConfig, tracker) -> DictConfig:
    """A copy of ``node`` whose ``runs:/<run_id>/<path>`` strings (a trained model) are local folders."""
    container = OmegaConf.to_container(node, resolve=True)

    def localize(value):
        if isinstance(value, dict):
            return {key: localize(item) for key, item in value.items()}
        if isinstance(value, list):
            return [localize(item) for item in value]
        if isinstance(value, str) and value.startswith("runs:/"):
            try:
                return tracker.download(value)
            except Exception as exc:  # mlflow raises several types for a run or path it cannot find
                raise LabError(f"{value!r} cannot be downloaded from {redact(tracker.tracking_uri)} "
                               f"({type(exc).__name__}); check the run id and path") from None
        return value

    return OmegaConf.create(localize(container))


def multirun_dir() -> Path | None:
    """The sweep folder of the Hydra multirun this job is part of; None outside one."""
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return None
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    return Path(hydra_cfg.sweep.dir)


def parent_run_file(sweep_dir: str | Path) -> Path:
    """Where a sweep keeps the id of its MLflow parent run, for every job and the sweeper to find."""
    return Path(sweep_dir) / PARENT_RUN_FILE


def parent_run_id(sweep_dir: str | Path | None) -> str | None:
    """The MLflow parent run of the sweep in ``sweep_dir``; None outside a sweep or when it has none."""
    if sweep_dir is None:
        return None
    path = parent_run_file(sweep_dir)
    return path.read_text().strip() if path.is_file() else None


class RedactSavedConfig(Callback):
    """Masks credentials of store URLs in the config files Hydra saved for a job (``.hydra/*.yaml``)."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if config.hydra.output_subdir is None:
            return
        folder = Path(config.hydra.runtime.output_dir) / config.hydra.output_subdir
        for path in folder.glob("*.yaml"):
            text = path.read_text()
            if redact(text) != text:
                partial = path.with_name(f".{path.name}.tmp")
                partial.write_text(redact(text))
                partial.replace(path)
