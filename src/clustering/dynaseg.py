"""DynaSeg and differentiable feature clustering: a small CNN trained per image to cluster its pixels.

Kim, Kanezaki & Tanaka (2020) train, on one image, a CNN whose 1x1-conv
response map, batch-normalised, is pushed towards its own argmax labels
(feature similarity) and towards equal neighbours (spatial continuity):
``L = L_sim + mu * L_con``. DynaSeg (Guermazi, Ksantini & Khan) makes ``mu``
follow the number of labels still in use, q': FSF ``mu = q' / alpha`` and
SCF ``mu = alpha / q'``, and stops at a number of clusters chosen by
silhouette on the first iteration's features, so the optimisation cannot
collapse to a single cluster. Imports torch; built only when selected.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from src.clustering.auto_k import AutoKClusterer
from src.clustering.kmeans import KMeansClusterer
from src.errors import LabError, check_choice, check_range

MU_MODES = ("fixed", "fsf", "scf")
DEFAULT_ALPHA = {"fsf": 15.0, "scf": 50.0}
STOP_MODES = ("silhouette", "threshold")


def dynamic_mu(mode: str, n_labels: int, *, mu: float = 5.0, alpha: float | None = None) -> float:
    """Weight of the continuity loss for ``n_labels`` labels in use (q').

    Parameters
    ----------
    mode : {"fixed", "fsf", "scf"}
        ``fixed``: ``mu``; ``fsf`` (feature similarity first): ``q' / alpha``;
        ``scf`` (spatial continuity first): ``alpha / q'``.
    n_labels : int
        Number of distinct labels, q' >= 1.
    mu : float, default 5.0
        The fixed weight.
    alpha : float, optional
        Defaults to 15 for ``fsf`` and 50 for ``scf``.
    """
    check_choice("clusterer.mu_mode", mode, MU_MODES)
    if mode == "fixed":
        return float(mu)
    alpha = DEFAULT_ALPHA[mode] if alpha is None else alpha
    return n_labels / alpha if mode == "fsf" else alpha / n_labels


class PixelCNN(nn.Module):
    """M blocks of 3x3 conv, ReLU, BatchNorm at full resolution, then a 1x1 conv and BatchNorm to q responses."""

    def __init__(self, in_channels: int, n_channels: int = 100, n_blocks: int = 3):
        super().__init__()
        layers = []
        for block in range(n_blocks):
            layers += [nn.Conv2d(in_channels if block == 0 else n_channels, n_channels, 3, padding=1),
                       nn.ReLU(inplace=True), nn.BatchNorm2d(n_channels)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(n_channels, n_channels, 1)
        self.norm = nn.BatchNorm2d(n_channels)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, C, H, W) -> features (1, p, H, W) and normalised responses r' (1, q, H, W)."""
        features = self.features(image)
        return features, self.norm(self.classifier(features))


def continuity_loss(responses: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of vertically and horizontally adjacent responses (L1 spatial continuity)."""
    vertical = (responses[:, :, 1:, :] - responses[:, :, :-1, :]).abs().mean()
    horizontal = (responses[:, :, :, 1:] - responses[:, :, :, :-1]).abs().mean()
    return vertical + horizontal


class DynaSegClusterer:
    """Per-image unsupervised segmentation by a CNN trained on the image itself.

    Parameters
    ----------
    n_channels : int, default 100
        p = q, the feature and response channels (>= 2).
    n_blocks : int, default 3
        M conv blocks of the extractor (>= 1).
    iterations : int, default 50
        T, the most optimisation steps per image (>= 1).
    mu_mode : {"fixed", "fsf", "scf"}, default "scf"
        How the continuity weight follows q' (see ``dynamic_mu``).
    mu : float, default 5.0
        Weight for ``mu_mode="fixed"`` (>= 0).
    alpha : float or None
        FSF/SCF constant (> 0); None uses 15 (FSF) or 50 (SCF).
    stop : {"silhouette", "threshold"}, default "silhouette"
        Stop when q' falls to the number of clusters that silhouette picks on
        the first iteration's features (among ``k_values``), or to ``min_labels``.
    min_labels : int, default 3
        The fixed threshold of ``stop="threshold"`` (>= 2).
    k_values : sequence of int, default (2, 3, 4, 5, 6, 8)
    silhouette_sample : int, default 1000
    lr, momentum, weight_decay : float
        SGD settings, default 0.1, 0.9, 1e-4.
    device : str, default "auto"
        "auto" (CUDA when present), "cpu" or "cuda".
    seed : int, default 0

    After ``fit_predict``, ``fit_metrics`` holds the iterations run, the
    target q', the final q' and the final loss, and ``fit_history`` the loss, q'
    and mu of every iteration.
    """

    def __init__(self, n_channels: int = 100, n_blocks: int = 3, iterations: int = 50, mu_mode: str = "scf",
                 mu: float = 5.0, alpha: float | None = None, stop: str = "silhouette", min_labels: int = 3,
                 k_values=(2, 3, 4, 5, 6, 8), silhouette_sample: int = 1000, lr: float = 0.1, momentum: float = 0.9,
                 weight_decay: float = 1e-4, device: str = "auto", seed: int = 0):
        check_range("clusterer.n_channels", n_channels, 2, integer=True)
        check_range("clusterer.n_blocks", n_blocks, 1, integer=True)
        check_range("clusterer.iterations", iterations, 1, integer=True)
        check_choice("clusterer.mu_mode", mu_mode, MU_MODES)
        check_range("clusterer.mu", mu, 0)
        if alpha is not None:
            check_range("clusterer.alpha", alpha, 0, low_open=True)
        check_choice("clusterer.stop", stop, STOP_MODES)
        check_range("clusterer.min_labels", min_labels, 2, integer=True)
        check_range("clusterer.lr", lr, 0, low_open=True)
        check_choice("clusterer.device", device, ("auto", "cpu", "cuda"))
        if device == "cuda" and not torch.cuda.is_available():
            raise LabError("clusterer.device='cuda' but no CUDA device is visible; use auto or cpu")
        self.n_channels, self.n_blocks, self.iterations = n_channels, n_blocks, iterations
        self.mu_mode, self.mu, self.alpha = mu_mode, mu, alpha
        self.stop, self.min_labels = stop, min_labels
        self.target_picker = AutoKClusterer(KMeansClusterer(fit_sample=min(2000, max(silhouette_sample, 8))),
                                            k_values=k_values, silhouette_sample=silhouette_sample, seed=seed)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   "cpu" if device == "auto" else device)
        self.seed = seed
        self.fit_metrics: dict[str, float] = {}
        self.fit_history: list[dict[str, float]] = []

    def check_input(self, n_pixels: int) -> None:
        if n_pixels < 2:
            raise LabError(f"clusterer=dynaseg needs at least 2 pixels per image, got {n_pixels}")

    def _target(self, features: torch.Tensor) -> int:
        if self.stop == "threshold":
            return self.min_labels
        pixels = features[0].permute(1, 2, 0).detach().cpu().numpy()
        self.target_picker.fit_predict(pixels)
        return int(self.target_picker.fit_metrics["chosen_k"])

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) labels 0..q'-1."""
        h, w, c = features.shape
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            model = PixelCNN(c, self.n_channels, self.n_blocks).to(self.device)
            optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum,
                                        weight_decay=self.weight_decay)
            image = torch.from_numpy(np.ascontiguousarray(features.transpose(2, 0, 1), dtype=np.float32))
            image = image[None].to(self.device)
            self.fit_history, target = [], None
            for step in range(1, self.iterations + 1):
                optimizer.zero_grad()
                pixel_features, responses = model(image)
                if target is None:
                    target = self._target(pixel_features)
                labels = responses.argmax(dim=1)
                n_labels = int(torch.unique(labels).numel())
                mu = dynamic_mu(self.mu_mode, n_labels, mu=self.mu, alpha=self.alpha)
                loss = F.cross_entropy(responses, labels) + mu * continuity_loss(responses)
                loss.backward()
                optimizer.step()
                self.fit_history.append({"loss": float(loss.detach()), "n_labels": float(n_labels), "mu": mu})
                if n_labels <= target:
                    break
            with torch.no_grad():
                final = model(image)[1].argmax(dim=1)[0].cpu().numpy()
        _, labels = np.unique(final, return_inverse=True)
        self.fit_metrics = {"dynaseg_iterations": float(len(self.fit_history)), "dynaseg_target": float(target),
                            "dynaseg_labels": float(labels.max() + 1), "dynaseg_loss": self.fit_history[-1]["loss"]}
        return labels.reshape(h, w)
