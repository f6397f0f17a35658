"""The composition layer: the config in, built and checked stages out.

Entry points (``src.run``, ``src.train``, ``src.benchmark``, ``src.ui``,
``src.cleanup``) and the sweeper (``src.sweep``) build through here and never
import each other. Importing this module registers the config resolvers
(``${project_root:}``, ``${first_folder:...}``) that ``conf/`` uses.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import omegaconf
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.errors import LabError, check_choice, check_range, check_seed
from src.features.memo import MemoizedFeatures
from src.files import write_text_whole
from src.tracking import PARENT_RUN_FILE
from src.urls import redact

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
# the first of a list of folders that exists (null if none): where the real frames are found
OmegaConf.register_new_resolver(
    "first_folder", lambda folders: next((str(Path(f).resolve()) for f in folders if Path(f).is_dir()), None),
    replace=True)


def in_multirun() -> bool:
    """Whether this process runs a job of a multirun (``-m``: a sweep's trial)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


# true in a multirun's jobs, whose process sees the same frames again in later jobs; false in a single run
OmegaConf.register_new_resolver("in_multirun", in_multirun, replace=True)


@dataclass(frozen=True)
class Stages:
    """The built stages of one configuration, in the order data flows through them, and the tracker."""

    data: Any
    features: Any
    clusterer: Any
    postprocess: Any
    logger: Any
    # processes that score frames (``workers`` resolved: see ``frame_workers``)
    workers: int = 1


def build(node: DictConfig, path: str):
    """Instantiate a config node from its ``_target_``; bad values become one-line LabErrors.

    ``path`` is where ``node`` sits in the config (``"postprocess"``). A stage
    names only its own parameter (``max_distance=-1 is out of range``); the
    error is raised here with the key of the node that failed in front,
    ``postprocess.steps.field.max_distance=-1 is out of range``, read from
    Hydra's ``full_key`` and followed back through interpolations
    (``features.blocks.cnn.backbone`` is ``${backbone}``: ``backbone.threads``).
    """
    try:
        return hydra.utils.instantiate(node, _convert_="partial")
    except hydra.errors.InstantiationException as exc:
        where = _failed_key(exc, node, path)
        cause = exc.__cause__
        if isinstance(cause, LabError):
            raise cause.under(where) from None
        raise LabError(f"{where}: {str(cause or exc).splitlines()[0]}") from None
    except omegaconf.errors.MissingMandatoryValue as exc:
        key = exc.full_key if node._get_parent() is not None or not path else f"{path}.{exc.full_key}"
        raise LabError(f"{key} has no value (???); give one on the command line: {key}=...", key=key) from None


_FULL_KEY = re.compile(r"^full_key: (\S+)$", re.MULTILINE)


def _failed_key(exc: Exception, node: DictConfig, path: str) -> str:
    """The config key of the node whose ``_target_`` failed, as a user would set it."""
    found = _FULL_KEY.search(str(exc))
    if found is None:  # the node itself
        return path
    key = found.group(1)
    if node._get_parent() is None:  # a node made on its own: Hydra's keys are relative to it
        return f"{path}.{key}" if path else key
    return user_key(node._get_root(), key)


def user_key(root: DictConfig, key: str) -> str:
    """``key`` with every node on its way that is an interpolation of another (``${backbone}``) replaced by that."""
    path: list[str] = []
    try:
        for part in key.split("."):
            parent = OmegaConf.select(root, ".".join(path)) if path else root
            target = None
            if OmegaConf.is_dict(parent) and part in parent and OmegaConf.is_interpolation(parent, part):
                target = parent._get_node(part)._value()
            referenced = re.fullmatch(r"\$\{(\w[\w.]*)\}", target) if isinstance(target, str) else None
            path = referenced.group(1).split(".") if referenced else [*path, part]
    except Exception:  # an interpolation that does not resolve here: Hydra's key as it is
        return key
    return ".".join(path)


@contextmanager
def keyed(path: str):
    """Errors a stage raises in the block (its checks compose calls) get ``path`` in front of their key."""
    try:
        yield
    except LabError as exc:
        raise exc.under(path) from None


def load_config(overrides: list[str], config_name: str = "config") -> DictConfig:
    """The root config composed with ``overrides``, for commands outside ``@hydra.main`` (no output folder)."""
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    except Exception as exc:  # Hydra's override and config errors come in several types
        raise LabError(f"overrides {' '.join(overrides)!r}: {config_error(exc)}") from None


# the command whose root config each file of conf/ is, for errors that send an option to the right one
ROOT_COMMANDS = {"config": "python -m src.run", "train": "python -m src.train"}


def check_group_choices(arguments: list[str], conf_dir: Path = PROJECT_ROOT / "conf", *,
                        config_name: str = "config") -> None:
    """Raise LabError for a command-line choice of a config group that has no such option, or of an option that
    overrides groups the root config ``config_name`` does not have (``src.run``'s experiments in ``src.train``).

    Hydra reports a mistyped option (``clusterer=kmenas``) in twenty lines of
    search paths; this names the option, the value and the choices, with the
    closest first. Options in a folder added with ``--config-dir`` (``-cd``)
    count. Sweeps (``a,b``, ``choice(...)``) and ``null`` are left to Hydra
    and the sweepers, and so is every choice of a command line that moves the
    config search path otherwise (``--config-path``, ``hydra.searchpath``).
    """
    import difflib

    roots = [conf_dir]
    for flag, value in zip(arguments, arguments[1:]):
        if flag in ("--config-dir", "-cd"):
            roots.append(Path(value))
    roots += [Path(a.split("=", 1)[1]) for a in arguments if a.startswith("--config-dir=")]
    if any(a.startswith(("--config-path", "-cp", "hydra.searchpath", "+hydra.searchpath")) for a in arguments):
        return
    for override in arguments:
        key, sep, value = override.partition("=")
        groups = [root / key.lstrip("+~") for root in roots if key.lstrip("+~") and (root / key.lstrip("+~")).is_dir()]
        if not sep or key.startswith("-") or not groups or value == "null" or any(c in value for c in ",()*"):
            continue
        options = sorted({path.stem for group in groups for path in group.glob("*.yaml")})
        if value not in options:
            closest = difflib.get_close_matches(value, options, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(closest)}?" if closest else ""
            raise LabError(f"{key}={value!r} is not an option of config group {key.lstrip('+~')}; choose one of "
                           f"{options}{hint}")
        chosen = next(group / f"{value}.yaml" for group in groups if (group / f"{value}.yaml").is_file())
        foreign = sorted(_chosen_groups(chosen, conf_dir) - _root_groups(conf_dir, config_name))
        if foreign:
            owners = [root.stem for root in sorted(conf_dir.glob("*.yaml"))
                      if set(foreign) <= _root_groups(conf_dir, root.stem)]
            owner = f"; it is an option of {' and '.join(ROOT_COMMANDS.get(o, f'{o}.yaml') for o in owners)}" \
                if owners else ""
            raise LabError(f"{key}={value!r} chooses groups {foreign} that {config_name}.yaml does not have "
                           f"(its groups: {sorted(_root_groups(conf_dir, config_name))}){owner}")


def _defaults_groups(spec: dict) -> set[str]:
    """Config groups named in the defaults list of a config file's content, without ``override`` and ``/``."""
    return {key.removeprefix("override ").strip().lstrip("/")
            for entry in spec.get("defaults") or [] if isinstance(entry, dict) for key in entry}


def _root_groups(conf_dir: Path, config_name: str) -> set[str]:
    import yaml

    return _defaults_groups(yaml.safe_load((conf_dir / f"{config_name}.yaml").read_text()) or {})


def _chosen_groups(option: Path, conf_dir: Path) -> set[str]:
    """Groups of ``conf_dir`` that a global option file (an experiment) overrides in its defaults list or sets
    values of (``clusterer: {n_clusters: 10}``)."""
    import yaml

    text = option.read_text()
    if "# @package _global_" not in text:
        return set()
    spec = yaml.safe_load(text) or {}
    return {group for group in _defaults_groups(spec) | set(spec)
            if not group.startswith("hydra") and (conf_dir / group).is_dir()}


def check_override_keys(arguments: list[str], conf_dir: Path = PROJECT_ROOT / "conf", *,
                        config_name: str = "config") -> None:
    """Raise LabError for a command-line override of a key that the composed config does not have.

    Hydra reports ``clusterer.n_cluster=8`` in four lines without the keys
    there are; this composes the config with the command line's group choices
    (as Hydra will) and names the first missing part of the key, the keys its
    node has and the closest ones. New keys (``+key=...``), ``hydra.*`` and
    deletions are left to Hydra, and so is every command line whose
    composition could differ from Hydra's: a swept group choice, or a moved
    config search path.
    """
    import difflib

    if any(a.startswith(("--config", "-cd", "-cp", "hydra.searchpath", "+hydra.searchpath")) for a in arguments):
        return
    overrides = [a.partition("=")[::2] for a in arguments if "=" in a and not a.startswith("-")]
    overrides = [(key, value) for key, value in overrides if key.lstrip("+~")]
    choices = [(key, value) for key, value in overrides if (conf_dir / key.lstrip("+~")).is_dir()]
    if any(c in value for _, value in choices for c in ",()*"):
        return
    checked = [(key, value) for key, value in overrides
               if (key, value) not in choices and not key.startswith(("+", "~", "hydra"))]
    if not checked:
        return
    try:
        cfg = load_config([f"{key}={value}" for key, value in choices], config_name)
    except LabError:
        return  # Hydra reports a config that does not compose
    for key, value in checked:
        parts = key.split(".")
        for depth, part in enumerate(parts):
            node_key = ".".join(parts[:depth])
            node = OmegaConf.select(cfg, node_key, throw_on_resolution_failure=False) if node_key else cfg
            if not isinstance(node, DictConfig):
                break
            # keys(), not `in`: a key whose value is missing (???) is not `in` its node
            known = sorted(str(k) for k in node.keys())
            if part not in known:
                closest = difflib.get_close_matches(part, known, n=3, cutoff=0.6)
                hint = f"; did you mean {' or '.join(closest)}?" if closest else ""
                where = f"{node_key} has" if node_key else "the config has"
                raise LabError(f"{key}={value}: {where} no key {part!r}; it has {known}{hint}")


def config_error(exc: Exception) -> str:
    """Hydra's error about a config on one line, without the search path it lists after the options."""
    return " ".join(str(exc).split()).split(" Config search path:")[0][:300]


def objective_names(objective: str | Sequence[str]) -> list[str]:
    """The configured ``objective`` as a list: one summary key, or several for a multi-objective sweep."""
    return [objective] if isinstance(objective, str) else list(objective)


def build_tracker(cfg: DictConfig):
    """The tracker of ``cfg.logger``, its store opened and written to (one-line LabError if it cannot be)."""
    tracker = build(cfg.logger, "logger")
    with keyed("logger"):
        tracker.check()
    return tracker


@dataclass
class Training:
    """What ``python -m src.train`` needs before it reads a frame: the model, its settings and its folder."""

    model: Any
    settings: Any
    out_dir: Path


def build_training(cfg: DictConfig) -> Training:
    """Check every option of a training config (``conf/train.yaml``) and build its model; no frame is read.

    With ``out_dir: null`` a model goes to ``<paths.models_dir>/<name>_<task>``,
    where the learned feature sets find it, and a multirun's job writes to its
    own output folder instead, so that jobs do not overwrite each other's.
    """
    import torch

    from src.models.checkpoint import model_folder
    from src.training import LOSSES, TrainSettings

    check_seed("seed", cfg.seed)
    check_range("n_pictures", cfg.n_pictures, 0, integer=True)
    if not str(cfg.data.get("_target_", "")).endswith(".FootballDataset"):
        # training holds out src.run's sample of an annotated dataset, and the supervised model needs its masks
        source = str(cfg.data.get("_target_")).rsplit(".", 1)[-1]
        raise LabError(f"data: training reads the football layout (images/ and a COCO file), not {source}; use "
                       "data=football or data=synthetic", key="data")
    # the initial weights are a random choice too: they come from the config's seed, not the global generator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build(cfg.model, "model")
    channels = cfg.model.get("in_channels", 3)
    if channels != 3:
        raise LabError(f"model.in_channels={channels}: the frames are RGB; use 3", key="model.in_channels")
    if model.task == "segmentation" and cfg.model.get("out_channels", 1) != 1:
        raise LabError(f"model.out_channels={cfg.model.out_channels} makes a segmentation model, which predicts one "
                       "player-mask channel; use 1 (or 3, the frames' channels, to reconstruct)",
                       key="model.out_channels")
    options = OmegaConf.to_container(cfg.train, resolve=True)
    options["loss"] = options["loss"] or LOSSES[model.task][0]
    settings = TrainSettings(**options)
    settings.check(model.task)
    if cfg.out_dir is not None:
        out_dir = Path(str(cfg.out_dir)).expanduser()
    elif multirun_dir() is not None:
        out_dir = Path(HydraConfig.get().runtime.output_dir) / "model"
    else:
        out_dir = model_folder(cfg.paths.models_dir, model)
    check_writable_folder("out_dir", out_dir)
    return Training(model=model, settings=settings, out_dir=out_dir)


def check_writable_folder(option: str, folder: Path) -> None:
    """Raise LabError unless ``folder`` is, or can be made, a folder this process can write; makes nothing."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        raise LabError(f"{option}={str(folder)!r} is a file; give a folder", key=option)
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    try:
        # a real write: permission bits say nothing of read-only mounts or /proc, or of what root may do
        with tempfile.TemporaryDirectory(dir=existing):
            pass
    except OSError as exc:
        raise LabError(f"{option}={str(folder)!r} cannot be written ({existing}: {exc.strerror}); give a folder "
                       "you can write", key=option) from None


def build_stages(cfg: DictConfig) -> Stages:
    """Build and check data, features, clusterer, postprocess and tracker; nothing runs yet."""
    from src.summary import SUMMARY_KEYS

    for name in objective_names(cfg.objective):
        check_choice("objective", name, SUMMARY_KEYS)
    # before the stages, whose own seeds are ${seed}: a bad one is named as the user gave it
    check_seed("seed", cfg.seed)
    check_range("silhouette_sample", cfg.silhouette_sample, 2, integer=True)
    if cfg.threads is not None:
        check_range("threads", cfg.threads, 1, integer=True)
    if cfg.workers != "auto":
        check_range("workers", cfg.workers, 1, integer=True)
    logger = build(cfg.logger, "logger")
    features = build(with_local_artifacts(cfg.features, logger), "features")
    clusterer = build(cfg.clusterer, "clusterer")
    postprocess = build(cfg.postprocess, "postprocess")
    data = build(cfg.data, "data")
    if getattr(data, "cache_frames", False):
        # the frames come back in later runs of this process (a sweep's trials), and so do their features
        features = MemoizedFeatures(features, cfg.features)
    check_input = getattr(clusterer, "check_input", None)
    if check_input is not None:
        with keyed("data"):
            # a stream's frames are not known before decoding; they all have the stream's size
            sizes = [data.image_size(i) for i in data.image_ids] or [data.image_size()]
        with keyed("clusterer"):
            check_input(min(w * h for w, h in sizes))
    with keyed("logger"):
        logger.check()
    return Stages(data=data, features=features, clusterer=clusterer, postprocess=postprocess, logger=logger,
                  workers=frame_workers(cfg, features, clusterer, len(getattr(data, "image_ids", ())) or None))


def available_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parallel_jobs() -> int:
    """Jobs a multirun launches at once (``hydra.sweeper.n_jobs`` or ``hydra.launcher.n_jobs``); 1 outside one."""
    if not in_multirun():
        return 1
    hydra_cfg = HydraConfig.get()
    return max(int(OmegaConf.select(hydra_cfg, "sweeper.n_jobs", default=None) or 1),
               int(OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=None) or 1))


def threads_per_worker(cfg: DictConfig, features, clusterer) -> int:
    """Cores one frame worker keeps busy: BLAS threads (``threads``; null: all) or a stage's torch threads."""
    torch_threads = [getattr(clusterer, "threads", 1)]
    for block in getattr(features, "blocks", {}).values():
        # a CNN block's network has its threads; a trained model's block (src.features.learned) its own
        torch_threads += [getattr(getattr(block, "backbone", None), "threads", 1), getattr(block, "threads", 1)]
    return max(available_cores() if cfg.threads is None else int(cfg.threads), *torch_threads)


def frame_workers(cfg: DictConfig, features, clusterer, n_frames: int | None) -> int:
    """The processes that score frames: ``workers``, or for ``auto`` the cores left to each of a sweep's
    parallel jobs divided by the threads of one worker, at most one per frame.

    One knob sets how a machine's cores are shared: ``hydra.sweeper.n_jobs``
    trials at once each get ``cores // n_jobs`` of them.

    A clusterer on a CUDA device runs in this process alone: checking for
    the device initialised CUDA here, and a process forked after that cannot
    use it. Its frames share the GPU through ``clusterer.images_per_batch``.
    """
    on_gpu = getattr(getattr(clusterer, "device", None), "type", None) == "cuda"
    if on_gpu and cfg.workers not in ("auto", 1):
        raise LabError(f"workers={cfg.workers} with clusterer.device on CUDA: forked workers cannot use the GPU this "
                       "process opened; use workers=1 or auto (frames share the GPU through "
                       "clusterer.images_per_batch) or clusterer.device=cpu", key="workers")
    if on_gpu:
        return 1
    if cfg.workers != "auto":
        return int(cfg.workers)
    workers = available_cores() // (parallel_jobs() * threads_per_worker(cfg, features, clusterer))
    return max(1, min(workers, n_frames or workers))


def with_local_artifacts(node: DictConfig, tracker) -> DictConfig:
    """A copy of ``node`` whose ``runs:/<run_id>/<path>`` strings (a trained model) are local folders.

    The copy keeps its place in the config (its parent, its keys, its
    interpolations), so errors of what it builds name the real keys.
    """
    local = copy.deepcopy(node)
    _localize(local, tracker)
    return local


def _localize(node, tracker) -> None:
    for key in list(node.keys()) if OmegaConf.is_dict(node) else range(len(node)):
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if OmegaConf.is_config(value):
            if OmegaConf.is_interpolation(node, key):
                # another part of the config: copied in resolved, and only when it holds a run's artifact
                plain = OmegaConf.to_container(value, resolve=True)
                local = _localized(plain, tracker, node._get_full_key(key))
                if local != plain:
                    node[key] = local
            else:
                _localize(value, tracker)
        elif isinstance(value, str) and value.startswith("runs:/"):
            node[key] = _download(value, tracker, node._get_full_key(key))


def _localized(value, tracker, where: str):
    if isinstance(value, dict):
        return {key: _localized(item, tracker, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_localized(item, tracker, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, str) and value.startswith("runs:/"):
        return _download(value, tracker, where)
    return value


def _download(uri: str, tracker, key: str) -> str:
    try:
        return tracker.download(uri)
    except Exception as exc:  # mlflow raises several types for a run or path it cannot find
        raise LabError(f"{key}={uri!r} cannot be downloaded from {redact(tracker.tracking_uri)} "
                       f"({type(exc).__name__}); check the run id and path", key=key) from None


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


class OutputFolderCheck(Callback):
    """Refuses, in one line, a run or multirun whose output folder cannot be written, before Hydra makes it
    (Hydra's own error is a traceback)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check("hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check("hydra.sweep.dir", config.hydra.sweep.dir)

    @staticmethod
    def _check(option: str, folder: str) -> None:
        try:
            check_writable_folder(option, Path(str(folder)))
        except LabError as exc:
            # Hydra turns a callback's exception into a warning and goes on
            raise SystemExit(redact(f"error: {exc}")) from None


class RedactSavedConfig(Callback):
    """Masks credentials of store URLs in the config files Hydra saved: a job's (``.hydra/*.yaml``) and a
    multirun's (``multirun.yaml`` in the sweep folder, written before its first job starts)."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if in_multirun():
            redact_file(Path(config.hydra.sweep.dir) / "multirun.yaml")
        if config.hydra.output_subdir is None:
            return
        for path in (Path(config.hydra.runtime.output_dir) / config.hydra.output_subdir).glob("*.yaml"):
            redact_file(path)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        redact_file(Path(config.hydra.sweep.dir) / "multirun.yaml")


def redact_file(path: Path) -> None:
    """Rewrite the text file at ``path`` with its credentials masked (``redact``), whole or not at all; nothing
    when it does not exist or holds none."""
    if not path.is_file():
        return
    text = path.read_text()
    if redact(text) != text:
        write_text_whole(path, redact(text))
