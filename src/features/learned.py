"""Features from a trained autoencoder or U-Net: one named map, upsampled to the working size (imports torch)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from src.errors import LabError, check_range
from src.frame import Frame
from src.models.blocks import images_to_tensor
from src.models.checkpoint import load_model
from src.torch_threads import torch_threads


class LearnedFeatures:
    """A map of a model trained by ``python -m src.train``, bilinearly upsampled to the frame.

    Parameters
    ----------
    checkpoint : str
        Folder with ``model.json`` and ``weights.pt`` (``runs:/<run_id>/model``
        URIs are downloaded to such a folder by ``src.run`` before this is built).
    architecture : str
        The architecture expected in the checkpoint (``autoencoder`` or ``unet``).
    layer : str, default "code"
        A name from the model's ``feature_info``: ``code``/``bottleneck`` or ``dec1``.. (coarse to fine).
    weight : float, default 1.0
    threads : int, default 2

    Returns (from ``__call__``) an (H, W, C) float32 array, C = the layer's channels.
    """

    def __init__(self, checkpoint: str, architecture: str, layer: str = "code", weight: float = 1.0,
                 threads: int = 2):
        check_range("weight", weight, 0)
        check_range("threads", threads, 1, integer=True)
        self.model, self.description = load_model(checkpoint, option="checkpoint",
                                                   expected=architecture)
        if layer not in self.model.feature_info:
            raise LabError(f"layer={layer!r} is not a map of {architecture}; choose one of "
                           f"{list(self.model.feature_info)}", key="layer")
        self.checkpoint, self.layer, self.weight, self.threads = checkpoint, layer, weight, threads

    @property
    def tags(self) -> dict[str, str]:
        return {"features.learned.checkpoint": str(self.checkpoint),
                "features.learned.trained_by": str(self.description.get("mlflow_run_id", "unknown"))}

    def __call__(self, frame: Frame) -> np.ndarray:
        h, w = frame.shape
        x = images_to_tensor(frame.image[None])
        with torch_threads(self.threads), torch.inference_mode():
            maps = self.model.feature_maps(x)[self.layer]
            reduction = self.model.feature_info[self.layer][1]
            padded = F.interpolate(maps, scale_factor=reduction, mode="bilinear", align_corners=False)
        return np.ascontiguousarray(padded[0, :, :h, :w].permute(1, 2, 0).numpy(), dtype=np.float32)
