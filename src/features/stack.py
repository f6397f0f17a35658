"""Concatenation of feature blocks into one standardized, weighted feature image."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from src.errors import LabError
from src.frame import Frame


def standardize(features: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per channel over the image; constant channels become 0.

    Parameters
    ----------
    features : (H, W, C) ndarray

    Returns
    -------
    (H, W, C) float32 ndarray, a new array.
    """
    flat = features.reshape(-1, features.shape[-1]).astype(np.float32)
    # statistics over contiguous rows of the transpose: an order of magnitude faster than axis=0
    channels = np.ascontiguousarray(flat.T)
    std = channels.std(axis=1)
    std[std == 0] = 1.0
    return ((flat - channels.mean(axis=1)) / std).reshape(features.shape)


class FeatureStack:
    """Pixel features of a frame: each block standardized, weighted, then concatenated.

    Standardizing each channel before weighting makes a block's ``weight``
    its share of the Euclidean distance, whatever the block's units.

    Parameters
    ----------
    blocks : mapping of name -> block
        Callables ``Frame -> (H, W, C)`` with a ``weight`` attribute. Blocks
        whose weight is 0 are skipped.
    """

    def __init__(self, blocks: Mapping):
        self.blocks = {name: block for name, block in blocks.items() if block is not None}
        if not any(block.weight > 0 for block in self.blocks.values()):
            raise LabError(f"blocks={sorted(self.blocks)} has no block with weight > 0; "
                           "give at least one block a positive weight", key="blocks")

    @property
    def tags(self) -> dict[str, str]:
        """Provenance the run records, from blocks that have some (e.g. which CNN weights were used)."""
        return {key: value for block in self.blocks.values() for key, value in getattr(block, "tags", {}).items()}

    def __call__(self, frame: Frame) -> np.ndarray:
        """Return the (H, W, C) float32 features of ``frame``."""
        return self.combine(self.parts(frame))

    def parts(self, frame: Frame) -> tuple[np.ndarray, ...]:
        """Each block in use (weight > 0) standardized, before weighting: what no weight changes, so a sweep
        over the weights keeps these (``src.features.memo``) and pays only for ``combine``."""
        return tuple(standardize(block(frame)) for block in self._used())

    def combine(self, parts: tuple[np.ndarray, ...]) -> np.ndarray:
        """The (H, W, C) float32 features from ``parts`` (of ``parts``): each weighted, then concatenated."""
        return np.concatenate([part * np.float32(block.weight) for part, block in zip(parts, self._used())],
                              axis=-1)

    def _used(self) -> list:
        return [block for block in self.blocks.values() if block.weight > 0]
