"""Pretrained CNN features, upsampled to the working resolution (imports torch)."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA

from src.errors import check_range, check_seed
from src.features.cache import ArrayCache, cache_key
from src.files import file_identity
from src.frame import Frame

log = logging.getLogger(__name__)


class CNNFeatures:
    """Feature maps of chosen backbone stages, optionally PCA-reduced, bilinearly upsampled to the frame.

    The network sees the frame decoded at ``original size / input_scale``,
    larger than the clustering resolution, so players a few pixels wide at
    the working size still span several receptive fields (the method's
    warning about downscaling before the network). Raw stage outputs are
    cached on disk per (image file, backbone, weights, input size, stages).

    Parameters
    ----------
    backbone : src.backbones.Backbone
        Built by the ``backbone`` config group.
    input_scale : int, default 4
        Downscale factor of the network's input from the original image;
        4 turns 1920x1080 into 480x270. Use at most the data scale.
    n_components : int or None, default 16
        PCA components kept, fitted per image on ``pca_sample`` seeded
        positions of the finest stage's grid; None keeps every channel.
    pca_sample : int, default 4000
    weight : float, default 1.0
    cache_dir : str or None
        Folder of the feature cache; None recomputes every time.
    seed : int, default 0

    Returns (from ``__call__``) an (H, W, C) float32 array, C = n_components or
    the sum of the stages' channels.
    """

    def __init__(self, backbone, input_scale: int = 4, n_components: int | None = 16, pca_sample: int = 4000,
                 weight: float = 1.0, cache_dir: str | None = None, seed: int = 0):
        check_range("input_scale", input_scale, 1, integer=True)
        if n_components is not None:
            check_range("n_components", n_components, 1, sum(backbone.channels), integer=True)
        check_range("pca_sample", pca_sample, 2, integer=True)
        check_range("weight", weight, 0)
        check_seed("seed", seed)
        self.backbone = backbone
        self.input_scale = input_scale
        self.n_components = n_components
        self.pca_sample = pca_sample
        self.weight = weight
        self.cache = ArrayCache(None if cache_dir is None else f"{cache_dir}/cnn")
        self.seed = seed

    @property
    def tags(self) -> dict[str, str]:
        """What the run should record about where its features came from."""
        return self.backbone.tags

    def network_input(self, frame: Frame) -> np.ndarray:
        """The frame at the network's input size, (h, w, 3) uint8: decoded from its file when it has one."""
        h, w = frame.shape
        size = (max(w * frame.scale // self.input_scale, 1), max(h * frame.scale // self.input_scale, 1))
        return frame.image_at(size)

    def stage_maps(self, frame: Frame) -> list[np.ndarray]:
        """Raw stage outputs, each (C_i, h_i, w_i) float16, from the cache when present."""
        key = None
        if frame.path is not None:
            key = cache_key(image=file_identity(frame.path), scale=frame.scale, input_scale=self.input_scale,
                            backbone=self.backbone.cache_id)
            cached = self.cache.load(key)
            if cached is not None:
                return cached
        maps = [m.astype(np.float16) for m in self.backbone(self.network_input(frame))]
        if key is not None:
            self.cache.save(key, maps)
        return maps

    def __call__(self, frame: Frame) -> np.ndarray:
        h, w = frame.shape
        maps = [torch.from_numpy(m.astype(np.float32)) for m in self.stage_maps(frame)]
        if self.n_components is None:
            return _channels_last(torch.cat([_resize(m, (h, w)) for m in maps]))
        # PCA and bilinear upsampling are both linear, so reducing at the finest stage's resolution and
        # upsampling the few components gives the same kind of features for a fraction of the work
        grid = max((tuple(m.shape[1:]) for m in maps), key=lambda size: size[0] * size[1])
        if grid[0] * grid[1] < self.n_components:
            grid = (h, w)  # too coarse to fit the components: reduce at the working size instead
        stacked = torch.cat([_resize(m, grid) for m in maps])
        flat = stacked.reshape(len(stacked), -1).T.numpy()
        rng = np.random.default_rng(self.seed)
        sample = flat[rng.choice(len(flat), size=min(self.pca_sample, len(flat)), replace=False)]
        kept = min(self.n_components, len(sample))
        reduced = np.zeros((len(flat), self.n_components), np.float32)
        # a frame smaller than n_components pixels keeps what it can; the rest stay constant zero channels
        reduced[:, :kept] = PCA(kept, svd_solver="covariance_eigh").fit(sample).transform(flat)
        components = torch.from_numpy(np.ascontiguousarray(reduced.T)).reshape(-1, *grid)
        return _channels_last(_resize(components, (h, w)))


def _resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) -> (C, *size), bilinear."""
    if tuple(maps.shape[1:]) == tuple(size):
        return maps
    return F.interpolate(maps[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


def _channels_last(maps: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(maps.permute(1, 2, 0).numpy(), dtype=np.float32)
