"""Training an autoencoder or U-Net on frames, and scoring it on the held-out evaluation frames (imports torch).

Knows neither Hydra nor MLflow: ``src.train`` builds the pieces and logs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from skimage import color

from src.devices import torch_device
from src.errors import LabError, check_bool, check_choice, check_range
from src.metrics import dice, hungarian_miou, iou, overlap_counts, pooled_scores
from src.models.blocks import images_to_tensor
from src.progress import progress
from src.torch_threads import torch_threads

LOSSES = {"reconstruction": ("mse", "weighted_mse"), "segmentation": ("bce_dice",)}
FRAME_SETS = ("outside_eval", "all")


@dataclass
class TrainSettings:
    """Training options (the ``train`` node of conf/train.yaml)."""

    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    loss: str = "mse"
    foreground_weight: float = 4.0
    foreground_distance: float = 25.0
    flip: bool = True
    frames: str = "outside_eval"
    allow_overlap: bool = False
    device: str = "auto"
    threads: int = 2

    def check(self, task: str) -> None:
        check_range("train.epochs", self.epochs, 1, integer=True)
        check_range("train.batch_size", self.batch_size, 1, integer=True)
        check_range("train.lr", self.lr, 0, low_open=True)
        check_range("train.weight_decay", self.weight_decay, 0)
        check_choice("train.loss", self.loss, LOSSES[task])
        check_range("train.foreground_weight", self.foreground_weight, 0)
        check_range("train.foreground_distance", self.foreground_distance, 0)
        check_choice("train.frames", self.frames, FRAME_SETS)
        check_bool("train.flip", self.flip)
        check_bool("train.allow_overlap", self.allow_overlap)
        torch_device(self.device, "train.device")
        check_range("train.threads", self.threads, 1, integer=True)


def training_ids(all_ids, eval_ids, frames: str, allow_overlap: bool, *, source: str = "football") -> list[int]:
    """The frames to train on: all outside the evaluation sample, or all (only when overlap is allowed)."""
    check_choice("train.frames", frames, FRAME_SETS)
    held_out = set(eval_ids)
    if frames == "outside_eval":
        ids = [i for i in all_ids if i not in held_out]
    else:
        ids = list(all_ids)
        overlap = len(held_out & set(ids))
        if overlap and not allow_overlap:
            raise LabError(f"train.frames='all' trains on {overlap} of the {len(held_out)} evaluation frames; use "
                           "train.frames=outside_eval, or train.allow_overlap=true to accept leaked scores")
    if not ids:
        hint = (f"; the synthetic set stands in for real frames (set FOOTBALL_DATA), and data.n_images="
                f"{len(held_out) // 2} leaves it half to train on" if source == "synthetic" else "")
        raise LabError(f"train.frames={frames!r} leaves no frame to train on: the evaluation sample takes all "
                       f"{len(held_out)}; lower data.n_images{hint}")
    return ids


def foreground_weights(images: np.ndarray, weight: float, distance: float) -> np.ndarray:
    """(N, H, W) loss weights: 1 + ``weight`` where a pixel's Lab colour is over ``distance`` from its frame's
    median."""
    out = np.ones(images.shape[:3], np.float32)
    for n, image in enumerate(images):
        lab = color.rgb2lab(image.astype(np.float32) / 255.0)
        far = np.linalg.norm(lab - np.median(lab.reshape(-1, 3), axis=0), axis=-1) > distance
        out[n] += weight * far
    return out


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    probs = torch.sigmoid(logits)
    overlap = (probs * target).sum(dim=(1, 2, 3))
    total = probs.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return (1 - (2 * overlap + 1) / (total + 1)).mean()


@dataclass
class History:
    """Per-epoch training loss and seconds."""

    loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def train(model: torch.nn.Module, images: np.ndarray, targets: np.ndarray | None, settings: TrainSettings, *,
          seed: int = 0, on_epoch=None) -> History:
    """Fit ``model`` on (N, H, W, 3) uint8 frames.

    Reconstruction (``targets`` None): MSE to the input, optionally weighted
    towards pixels unlike the frame's dominant colour. Segmentation:
    ``targets`` (N, H, W) bool masks, BCE + soft Dice. Batches are shuffled
    and flipped from ``seed``. ``on_epoch(epoch, loss)`` is called after each epoch.
    """
    device = torch_device(settings.device, "train.device")
    x = images_to_tensor(images)
    if targets is not None:
        y = torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))[:, None]
    elif settings.loss == "weighted_mse":
        weights = foreground_weights(images, settings.foreground_weight, settings.foreground_distance)
        y = torch.from_numpy(weights)[:, None]
    else:
        y = None
    history = History()
    with torch_threads(settings.threads), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        model.to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
        bar = progress(total=settings.epochs, desc="training", unit="epoch")
        for epoch in range(1, settings.epochs + 1):
            start, total = time.perf_counter(), 0.0
            order = torch.randperm(len(x), generator=generator)
            for first in range(0, len(x), settings.batch_size):
                batch = order[first:first + settings.batch_size]
                inputs = x[batch]
                extra = None if y is None else y[batch]
                if settings.flip:
                    flipped = torch.rand(len(batch), generator=generator) < 0.5
                    inputs = torch.where(flipped[:, None, None, None], inputs.flip(-1), inputs)
                    if extra is not None:
                        extra = torch.where(flipped[:, None, None, None], extra.flip(-1), extra)
                inputs = inputs.to(device)
                output = model(inputs)
                if targets is not None:
                    extra = extra.to(device)
                    loss = F.binary_cross_entropy_with_logits(output, extra) + soft_dice_loss(output, extra)
                elif extra is not None:
                    loss = (extra.to(device) * (output - inputs) ** 2).mean()
                else:
                    loss = F.mse_loss(output, inputs)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            history.loss.append(total / len(x))
            if not math.isfinite(history.loss[-1]):
                # NaN weights saved over a good model would feed every run of the feature sets that read it
                bar.close()
                raise LabError(f"train.lr={settings.lr}: the training loss became {history.loss[-1]} in epoch "
                               f"{epoch}, so nothing is saved; lower train.lr", key="train.lr")
            history.seconds.append(time.perf_counter() - start)
            bar.update()
            bar.set_postfix(loss=f"{history.loss[-1]:.4g}")
            if on_epoch is not None:
                on_epoch(epoch, history.loss[-1])
        bar.close()
    model.eval()
    return history


def predict(model: torch.nn.Module, images: np.ndarray, *, threads: int = 2, batch_size: int = 8) -> np.ndarray:
    """Model outputs for (N, H, W, 3) uint8 frames: (N, C, H, W) float32 on the CPU."""
    device = next(model.parameters()).device
    outputs = []
    with torch_threads(threads), torch.inference_mode():
        for first in range(0, len(images), batch_size):
            outputs.append(model(images_to_tensor(images[first:first + batch_size]).to(device)).cpu())
    return torch.cat(outputs).numpy()


def evaluate_segmentation(model, images: np.ndarray, masks: np.ndarray, *, threads: int = 2) -> dict[str, float]:
    """Dice, IoU (per image and pooled) and Hungarian mIoU of thresholded predictions, plus seconds per image."""
    start = time.perf_counter()
    predicted = predict(model, images, threads=threads)[:, 0] > 0
    seconds = (time.perf_counter() - start) / len(images)
    summary = {"dice_mean": float(np.mean([dice(p, t) for p, t in zip(predicted, masks)])),
               "iou_mean": float(np.mean([iou(p, t) for p, t in zip(predicted, masks)])),
               "hungarian_miou_mean": float(np.mean([hungarian_miou(p.astype(np.int64), t)
                                                     for p, t in zip(predicted, masks)])),
               "seconds_per_image": seconds}
    summary.update(pooled_scores([overlap_counts(p, t) for p, t in zip(predicted, masks)]))
    return summary


def evaluate_reconstruction(model, images: np.ndarray, *, threads: int = 2) -> dict[str, float]:
    """Mean squared error and PSNR of the reconstructions of held-out frames, plus seconds per image."""
    start = time.perf_counter()
    output = predict(model, images, threads=threads)
    seconds = (time.perf_counter() - start) / len(images)
    mse = ((output - images_to_tensor(images).numpy()) ** 2).mean(axis=(1, 2, 3))
    return {"recon_mse": float(mse.mean()), "recon_psnr": float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-12)))),
            "seconds_per_image": seconds}
