"""Features of frames kept in memory for the life of a process, so the trials of a sweep compute them once.

Trials of one sweep that share a feature config (a k-means sweep over k and
post-processing thresholds) would otherwise recompute the same arrays for
every trial. Entries are keyed by the feature config and by what identifies
a frame's pixels (file, its modification time and size, image id, scale),
and evicted least recently used beyond a byte budget. A ``FeatureStack`` is
kept as its standardized blocks before weighting (``FeatureStack.parts``), so
trials that differ only in the blocks' weights (a sweep over the position
weight) share them too and pay only for weighting them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.files import file_identity
from src.frame import Frame

_STORE: OrderedDict[tuple, np.ndarray | tuple[np.ndarray, ...]] = OrderedDict()
_HELD = {"bytes": 0}
# per process: two trial processes of a sweep hold up to twice this, and so do a trial's frame workers beside
# the sweep's process, which keeps what they hand back
MAX_BYTES = 1 << 30


def config_key(node: DictConfig, *, weighted_later: bool = False) -> str:
    """What determines a frame's stored features: the resolved feature config; with ``weighted_later`` (a
    stack stored before weighting) its blocks' weights count only as used (> 0) or not."""
    resolved = OmegaConf.to_container(node, resolve=True)
    if weighted_later:
        for block in (resolved.get("blocks") or {}).values():
            if isinstance(block, dict) and "weight" in block:
                block["weight"] = block["weight"] > 0
    # a model file trained again under its name gives other features: its content counts, not only its path
    files = sorted({value for key, value in _leaves(resolved) if key == "checkpoint" and isinstance(value, str)
                    and Path(value).is_file()})
    return OmegaConf.to_yaml(resolved) + "".join(f"# {file_identity(path)}\n" for path in files)


def _leaves(tree, key=None):
    """``(key, value)`` of every leaf of nested dicts and lists."""
    if isinstance(tree, dict):
        for name, value in tree.items():
            yield from _leaves(value, name)
    elif isinstance(tree, list):
        for value in tree:
            yield from _leaves(value, key)
    else:
        yield key, tree


class MemoizedFeatures:
    """``features(frame)``, computed once per frame and feature config in this process.

    Parameters
    ----------
    features : callable ``Frame -> (H, W, C) ndarray``
        With ``parts(frame)`` and ``combine(parts)`` (a ``FeatureStack``),
        the parts are stored and combined on each call.
    config : DictConfig or str
        The feature config (``features`` of the run's config), or a key
        that stands for it: everything that determines what is stored.
    max_bytes : int, default ``MAX_BYTES``
        What the process's store may hold; least recently used entries go first.

    Frames made in memory (``frame.path`` None) are not kept. Stored arrays
    are read-only, since later trials share them.
    """

    def __init__(self, features, config: DictConfig | str, *, max_bytes: int = MAX_BYTES):
        self.features, self.max_bytes = features, max_bytes
        self.stores_parts = hasattr(features, "parts") and hasattr(features, "combine")
        self.config_key = config if isinstance(config, str) else config_key(config, weighted_later=self.stores_parts)

    def __getattr__(self, name):
        # the wrapped stage's own attributes (tags, blocks) read through
        return getattr(self.features, name)

    def __call__(self, frame: Frame) -> np.ndarray:
        if frame.path is None:
            return self.features(frame)
        entry = self.entry(frame)
        return self.features.combine(entry) if self.stores_parts else entry

    def entry(self, frame: Frame) -> np.ndarray | tuple[np.ndarray, ...]:
        """What the store keeps of the frame (the features, or a stack's parts), computed now if it has nothing."""
        key = self._key(frame)
        if key in _STORE:
            _STORE.move_to_end(key)
            return _STORE[key]
        return self._store(key, self.features.parts(frame) if self.stores_parts else np.asarray(self.features(frame)))

    def holds(self, frame: Frame) -> bool:
        """Whether this process has the frame's features (a frame made in memory never has)."""
        return frame.path is not None and self._key(frame) in _STORE

    def remember(self, frame: Frame, entry: np.ndarray | tuple[np.ndarray, ...]) -> None:
        """Keep ``entry`` (as ``entry`` returns it) for the frame: what another process (a frame worker)
        computed, so that later runs of this process, and the workers it forks for them, find it."""
        if frame.path is not None:
            self._store(self._key(frame), tuple(entry) if self.stores_parts else np.asarray(entry))

    def _key(self, frame: Frame) -> tuple:
        stat = Path(frame.path).stat()
        return (self.config_key, self.stores_parts, str(frame.path), stat.st_mtime_ns, stat.st_size, frame.image_id,
                frame.scale)

    def _store(self, key: tuple, entry):
        arrays = entry if isinstance(entry, tuple) else (entry,)
        for array in arrays:
            array.setflags(write=False)
        if key in _STORE:
            _HELD["bytes"] -= _nbytes(_STORE[key])
        _STORE[key] = entry
        _STORE.move_to_end(key)
        _HELD["bytes"] += _nbytes(entry)
        while len(_STORE) > 1 and _HELD["bytes"] > self.max_bytes:
            _HELD["bytes"] -= _nbytes(_STORE.popitem(last=False)[1])
        return entry


def _nbytes(entry) -> int:
    return sum(array.nbytes for array in entry) if isinstance(entry, tuple) else entry.nbytes


def clear() -> None:
    """Forget every stored array of this process."""
    _STORE.clear()
    _HELD["bytes"] = 0


__all__ = ["MAX_BYTES", "MemoizedFeatures", "clear", "config_key"]
