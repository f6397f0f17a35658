"""DynaSeg and differentiable feature clustering: a small CNN trained per image to cluster its pixels.

Kim, Kanezaki & Tanaka (2020) train, on one image, a CNN whose 1x1-conv
response map, batch-normalised, is pushed towards its own argmax labels
(feature similarity) and towards equal neighbours (spatial continuity):
``L = L_sim + mu * L_con``. DynaSeg (Guermazi, Ksantini & Khan) makes ``mu``
follow the number of labels still in use, q': FSF ``mu = q' / alpha`` and
SCF ``mu = alpha / q'``, and stops at a number of clusters chosen by
silhouette on the first iteration's features, so the optimisation cannot
collapse to a single cluster. Imports torch; built only when selected.

The loop keeps q', mu, the stop test and the history on the device and asks
the host only every ``sync_every`` iterations, so a GPU is not stalled by a
synchronisation per step; the result does not depend on ``sync_every``
because the labels are kept from the iteration at which q' reached its target.
``images_per_batch`` images of one size can train together, each with its own
network, as grouped convolutions: one pass of bigger kernels instead of many
small ones, which is what a GPU wants.

Per iteration on a CPU the convolutions' forward and backward passes are most
of the time, and they already run near the cores' float32 peak; the rest is
made cheaper: the network and its activations live in channels-last memory
(``channels_last``), and the loss and its gradient are one fused pass
(``SelfLabelLoss``) instead of a dozen autograd temporaries.
``precision="bfloat16"`` halves the convolutions' cost, with labels that are
no longer those of float32. ``experiments/dynaseg_speed.py`` times the
loop against the reference loop of Kim et al., side by side.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from src.clustering.auto_k import AutoKClusterer
from src.clustering.fit import ClusterFit
from src.clustering.kmeans import KMeansClusterer
from src.clustering.objectives import silhouette_pick
from src.devices import torch_device
from src.errors import LabError, check_bool, check_choice, check_range, check_seed
from src.labels import dense_labels
from src.progress import progress
from src.signals import raise_if_stopped
from src.torch_threads import torch_threads

MU_MODES = ("fixed", "fsf", "scf")
DEFAULT_ALPHA = {"fsf": 15.0, "scf": 50.0}
STOP_MODES = ("silhouette", "threshold")
EXTRACTORS = ("cnn", "fpn")
PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16}

log = logging.getLogger(__name__)


def dynamic_mu(mode: str, n_labels, *, mu: float = 5.0, alpha: float | None = None):
    """Weight of the continuity loss for ``n_labels`` labels in use (q').

    Parameters
    ----------
    mode : {"fixed", "fsf", "scf"}
        ``fixed``: ``mu``; ``fsf`` (feature similarity first): ``q' / alpha``;
        ``scf`` (spatial continuity first): ``alpha / q'``.
    n_labels : int or torch.Tensor
        Number of distinct labels, q' >= 1; a tensor gives a tensor (no host sync).
    mu : float, default 5.0
        The fixed weight.
    alpha : float, optional
        Defaults to 15 for ``fsf`` and 50 for ``scf``.
    """
    check_choice("mu_mode", mode, MU_MODES)
    if mode == "fixed":
        return float(mu)
    alpha = DEFAULT_ALPHA[mode] if alpha is None else alpha
    return n_labels / alpha if mode == "fsf" else alpha / n_labels


def conv_block(in_channels: int, out_channels: int, copies: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_channels * copies, out_channels * copies, 3, padding=1, groups=copies),
            nn.ReLU(inplace=True), nn.BatchNorm2d(out_channels * copies)]


class PixelCNN(nn.Module):
    """A feature extractor, then a 1x1 conv and BatchNorm to q responses.

    ``extractor="cnn"``: M blocks of 3x3 conv, ReLU, BatchNorm at full
    resolution (Kim et al.). ``extractor="fpn"``: the decoder of a feature
    pyramid over pretrained backbone stages that the features stage has already
    upsampled to the working size and concatenated: a 1x1 lateral conv, then a
    3x3 output conv, ReLU and BatchNorm. Bilinear upsampling commutes with a 1x1
    conv, so one lateral over the concatenated stages equals the FPN's top-down
    sum of per-stage laterals at the finest level.

    ``copies`` > 1 holds that many independent networks side by side as
    grouped convolutions: copy ``i`` reads input channels ``i*C:(i+1)*C`` and
    writes channels ``i*p:(i+1)*p``, and BatchNorm over one image's pixels
    normalises each copy on its own image, so several images train in one pass.
    """

    def __init__(self, in_channels: int, n_channels: int = 100, n_blocks: int = 3, extractor: str = "cnn", *,
                 copies: int = 1):
        super().__init__()
        self.settings = (in_channels, n_channels, n_blocks, extractor)
        if extractor == "fpn":
            layers = [nn.Conv2d(in_channels * copies, n_channels * copies, 1, groups=copies),
                      *conv_block(n_channels, n_channels, copies)]
        else:
            layers = [layer for block in range(n_blocks)
                      for layer in conv_block(in_channels if block == 0 else n_channels, n_channels, copies)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(n_channels * copies, n_channels * copies, 1, groups=copies)
        self.norm = nn.BatchNorm2d(n_channels * copies)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, copies*C, H, W) -> features (1, copies*p, H, W) and normalised responses r' (1, copies*q, H, W)."""
        features = self.features(image)
        return features, self.norm(self.classifier(features))


def replicate(model: PixelCNN, copies: int) -> PixelCNN:
    """``copies`` independent networks in one grouped ``PixelCNN``, each starting from ``model``'s weights."""
    if copies == 1:
        return model
    stacked = PixelCNN(*model.settings, copies=copies).to(next(model.parameters()).device)
    stacked.load_state_dict({name: value.repeat(copies, *[1] * (value.dim() - 1)) if value.dim() else value
                             for name, value in model.state_dict().items()})
    return stacked


def continuity_loss(responses: torch.Tensor) -> torch.Tensor:
    """(N, q, H, W) -> (N,): mean absolute difference of vertically and horizontally adjacent responses per image."""
    vertical = (responses[:, :, 1:, :] - responses[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
    horizontal = (responses[:, :, :, 1:] - responses[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    return vertical + horizontal


class SelfLabelLoss(torch.autograd.Function):
    """``L_sim + mu * L_con`` per image in one fused pass.

    Responses, their (N, H, W) argmax labels and (N,) weights mu -> (N,)
    losses. The responses are (N, q, H, W), or the (1, N*q, H, W) output of
    N grouped networks (``PixelCNN(copies=N)``) as it is: the gradient then has
    that output's own strides. A per-image view of it would pass BatchNorm's
    backward a gradient whose batch stride differs from its input's, and on a
    CPU that sends channels-last BatchNorm down a generic path several times
    slower than the convolutions around it. ``L_sim`` is the cross-entropy of the responses against
    their own argmax, ``logsumexp - max``; ``L_con`` is ``continuity_loss``.
    Same math as ``F.cross_entropy(r, labels, reduction="none")`` averaged per
    image plus ``mu * continuity_loss(r)``, but the gradient
    (``softmax - onehot`` over H*W, plus ``mu * sign`` of each neighbour
    difference over its count) is written in place in the forward pass, where
    autograd would keep a dozen response-sized temporaries (zero-padded slice
    gradients among them). Floats differ from the unfused loss in the last bits
    only (the order of additions). An image one pixel high or wide has no
    neighbours in that direction: that term is 0 (the unfused mean is NaN).
    ``mu`` gets no gradient (it is a function of the labels).
    """

    @staticmethod
    def forward(ctx, output: torch.Tensor, labels: torch.Tensor, mu: torch.Tensor):
        n, (h, w) = len(labels), output.shape[2:]
        responses = output.view(n, -1, h, w)
        top = responses.gather(1, labels[:, None])
        output_grad = torch.empty_like(output)
        grad = torch.sub(responses, top, out=output_grad.view(n, -1, h, w)).exp_()
        total = grad.sum(dim=1, keepdim=True)
        similarity = total.log().mean(dim=(1, 2, 3))
        grad.div_(total)
        grad.scatter_add_(1, labels[:, None], torch.full_like(top, -1.0))
        grad.mul_(1.0 / (h * w))
        continuity = torch.zeros_like(similarity)
        for dim, size in ((2, h), (3, w)):
            if size < 2:
                continue
            difference = responses.narrow(dim, 1, size - 1) - responses.narrow(dim, 0, size - 1)
            count = difference[0].numel()
            continuity += difference.abs().sum(dim=(1, 2, 3)) / count
            step = difference.sign_().mul_((mu / count)[:, None, None, None])
            grad.narrow(dim, 1, size - 1).add_(step)
            grad.narrow(dim, 0, size - 1).sub_(step)
        ctx.save_for_backward(output_grad)
        return similarity + mu * continuity

    @staticmethod
    def backward(ctx, grad_losses: torch.Tensor):
        (output_grad,) = ctx.saved_tensors  # backward runs once per forward: scaled in place
        n, (h, w) = len(grad_losses), output_grad.shape[2:]
        output_grad.view(n, -1, h, w).mul_(grad_losses[:, None, None, None])
        return output_grad, None, None


class DynaSegClusterer:
    """Per-image unsupervised segmentation by a CNN trained on the image itself.

    Parameters
    ----------
    n_channels : int, default 100
        p = q, the feature and response channels (>= 2).
    n_blocks : int, default 3
        M conv blocks of the ``cnn`` extractor (>= 1).
    extractor : {"cnn", "fpn"}, default "cnn"
        ``cnn`` trains M conv blocks on the input features (colour, position);
        ``fpn`` trains a feature-pyramid decoder on pretrained backbone stages
        (use with ``features=backbone_stages``).
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
        Seeded pixels that the stop target's silhouette scores each k on (more
        than the largest of ``k_values``); the k-means of each k is fitted on
        them (on 2000 of them when more) and the rest of the image is never
        labelled, as the choice does not read it.
    lr, momentum, weight_decay : float
        SGD settings, default 0.1, 0.9, 1e-4.
    snapshots : sequence of int, default ()
        Iterations whose label maps are kept in ``fit_snapshots`` (logged as
        images); those after the stop or after T are not reached.
    device : str, default "auto"
        "auto" (CUDA when present), "cpu" or "cuda".
    sync_every : int or None
        Iterations between host checks of the stop test; None: 1 on CPU, 10 on CUDA.
    images_per_batch : int, default 1
        Images of the same size optimised together by ``fit_many`` (one
        network each, side by side as grouped convolutions); the labels are
        those of one image at a time up to float rounding. Out of memory, a
        batch is halved and tried again.
    threads : int, default 2
        Torch CPU threads.
    channels_last : bool, default True
        Keep the image, the network and its activations in channels-last
        (NHWC) memory: oneDNN's convolutions and the per-pixel softmax over q
        then read contiguous memory, with no reorder per layer (an iteration
        at 240x135 with p = 100 and two blocks took 0.21 s on two cores against
        0.30 s, alternating runs). Same math; floats differ in the last bits,
        which the self-labelling loop can grow into a few per cent of pixels
        labelled differently after 20 iterations.
    precision : {"float32", "bfloat16"}, default "float32"
        ``bfloat16`` runs the network's forward pass under autocast (the
        convolutions in bfloat16, about 2.3x faster per iteration at 240x135 on
        a 2-core CPU with AVX-512 BF16 and AMX; a CPU without them may gain
        nothing; the loss stays in float32). Not the same labels:
        about 3% of pixels differ after the first iteration already.
    seed : int, default 0

    ``fit_many`` returns a ``ClusterFit`` per image: the iterations run, the
    target q', the final q' and the final loss as metrics, the loss, q' and mu
    of every iteration as history, and the chosen label maps. ``fit_predict``
    keeps them in ``fit_metrics``, ``fit_history`` and ``fit_snapshots``.
    """

    def __init__(self, n_channels: int = 100, n_blocks: int = 3, extractor: str = "cnn", iterations: int = 50,
                 mu_mode: str = "scf", mu: float = 5.0, alpha: float | None = None, stop: str = "silhouette",
                 min_labels: int = 3, k_values=(2, 3, 4, 5, 6, 8), silhouette_sample: int = 1000, lr: float = 0.1,
                 momentum: float = 0.9, weight_decay: float = 1e-4, snapshots=(), device: str = "auto",
                 sync_every: int | None = None, images_per_batch: int = 1, threads: int = 2,
                 channels_last: bool = True, precision: str = "float32", seed: int = 0):
        check_range("n_channels", n_channels, 2, integer=True)
        check_range("n_blocks", n_blocks, 1, integer=True)
        check_choice("extractor", extractor, EXTRACTORS)
        check_range("iterations", iterations, 1, integer=True)
        check_choice("mu_mode", mu_mode, MU_MODES)
        check_range("mu", mu, 0)
        if alpha is not None:
            check_range("alpha", alpha, 0, low_open=True)
        check_choice("stop", stop, STOP_MODES)
        check_range("min_labels", min_labels, 2, integer=True)
        check_range("lr", lr, 0, low_open=True)
        check_range("momentum", momentum, 0)
        check_range("weight_decay", weight_decay, 0)
        for step in snapshots:
            check_range("snapshots", step, 1, integer=True)
        self.device = torch_device(device)
        if sync_every is not None:
            check_range("sync_every", sync_every, 1, integer=True)
        check_range("images_per_batch", images_per_batch, 1, integer=True)
        check_range("threads", threads, 1, integer=True)
        check_choice("precision", precision, tuple(PRECISIONS))
        check_bool("channels_last", channels_last)
        self.channels_last, self.precision = channels_last, precision
        self.n_channels, self.n_blocks, self.extractor = n_channels, n_blocks, extractor
        self.iterations, self.mu_mode, self.mu, self.alpha = iterations, mu_mode, mu, alpha
        self.stop, self.min_labels = stop, min_labels
        check_range("silhouette_sample", silhouette_sample, 2, integer=True)
        check_seed("seed", seed)
        largest_k = max((int(k) for k in k_values), default=2)
        if stop == "silhouette" and silhouette_sample <= largest_k:
            raise LabError(f"silhouette_sample={silhouette_sample} leaves too few pixels to score k={largest_k} "
                           f"of k_values by silhouette; use at least {largest_k + 1}", key="silhouette_sample")
        # the picker sets n_clusters to each of k_values in turn; it sees only the pixels the silhouette scores
        # (``_target``), and its k-means fits on all of them up to 2000
        self.target_picker = None if stop == "threshold" else AutoKClusterer(
            KMeansClusterer(n_clusters=2, fit_sample=min(2000, silhouette_sample), seed=seed),
            k_values=k_values, silhouette_sample=silhouette_sample, seed=seed, inertia_curve=False)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.snapshots = frozenset(snapshots)
        self.sync_every = sync_every or (10 if self.device.type == "cuda" else 1)
        self.images_per_batch, self.threads, self.seed = images_per_batch, threads, seed
        self.fit_metrics: dict[str, float] = {}
        self.fit_history: list[dict[str, float]] = []
        self.fit_snapshots: dict[int, np.ndarray] = {}

    def check_input(self, n_pixels: int) -> None:
        if n_pixels < 2:
            raise LabError(f"clusterer=dynaseg needs at least 2 pixels per image, got {n_pixels}")
        if self.target_picker is not None:
            # the silhouette stop's target is a k of k_values, each a k-means of the frame's pixels
            self.target_picker.check_input(n_pixels)

    def _target(self, features: torch.Tensor) -> int:
        """The stop target for one image's (p, H, W) first-iteration features."""
        if self.stop == "threshold":
            return self.min_labels
        flat = features.detach().reshape(features.shape[0], -1)
        # the silhouette of a k-means labelling of every pixel reads only its sampled pixels, and k-means fitted
        # on that same sample labels them as its fit did: so only they are gathered (where the features are, on a
        # GPU there), sent to the host and clustered, with the k chosen as if all had been
        sample = self.target_picker.silhouette_sample
        if sample < flat.shape[1]:
            pick = silhouette_pick(flat.shape[1], sample, self.seed)
            flat = flat[:, torch.from_numpy(pick).to(flat.device)]
        pixels = flat.T.contiguous().to("cpu", torch.float64)
        self.target_picker.fit_predict(pixels.numpy()[:, None, :])
        return int(self.target_picker.fit_metrics["chosen_k"])

    def fit_predict(self, features: np.ndarray) -> np.ndarray:
        """(H, W, C) features -> (H, W) labels 0..q'-1."""
        (fit,) = self.fit_many([features])
        self.fit_metrics, self.fit_history, self.fit_snapshots = fit.metrics, fit.history, fit.snapshots
        return fit.labels

    def fit_many(self, features: list[np.ndarray]) -> list[ClusterFit]:
        """Optimise each (H, W, C) array, up to ``images_per_batch`` of one size at a time; a ``ClusterFit`` each."""
        for image in features:
            self.check_input(image.shape[0] * image.shape[1])
        fits: list[ClusterFit | None] = [None] * len(features)
        per_batch, start = self.images_per_batch, 0
        while start < len(features):
            shape = features[start].shape
            stop = start + 1
            while stop < min(start + per_batch, len(features)) and features[stop].shape == shape:
                stop += 1
            try:
                fits[start:stop] = self._fit_batch(features[start:stop])
            except torch.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if stop - start == 1:
                    raise LabError(f"clusterer=dynaseg ran out of {self.device.type} memory on a "
                                   f"{shape[0]}x{shape[1]} image with n_channels={self.n_channels}; lower "
                                   f"clusterer.n_channels, raise data.scale or use clusterer.device=cpu") from None
                per_batch = (stop - start) // 2
                log.warning("clusterer=dynaseg ran out of %s memory on %d images at once; trying %d",
                            self.device.type, stop - start, per_batch)
                continue
            start = stop
        return fits

    def _fit_batch(self, features: list[np.ndarray]) -> list[ClusterFit]:
        images = torch.from_numpy(np.stack([np.ascontiguousarray(f.transpose(2, 0, 1), dtype=np.float32)
                                            for f in features]))
        with torch_threads(self.threads), \
                torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            fits = self._optimise(images.to(self.device))
        for fit in fits:
            _, labels = dense_labels(fit.labels)
            fit.labels = labels
            fit.metrics.update(dynaseg_labels=float(labels.max() + 1), dynaseg_loss=fit.history[-1]["loss"],
                               dynaseg_iterations=float(len(fit.history)))
        return fits

    def _optimise(self, images: torch.Tensor) -> list[ClusterFit]:
        """SGD on (N, C, H, W) images, one network each (all starting from the same seeded weights); per image
        the labels at its stop (or after T steps), its target q', and its history up to the stop."""
        n, c, h, w = images.shape
        layout = torch.channels_last if self.channels_last else torch.contiguous_format
        single = PixelCNN(c, self.n_channels, self.n_blocks, self.extractor).to(self.device)
        model = replicate(single, n).to(memory_format=layout)
        optimizer = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum,
                                    weight_decay=self.weight_decay)
        stacked = images.reshape(1, n * c, h, w).contiguous(memory_format=layout)
        autocast_dtype = PRECISIONS[self.precision]
        targets, kept = None, None
        stopped = torch.zeros(n, dtype=torch.bool, device=self.device)
        in_use = torch.zeros(n, self.n_channels, device=self.device)
        records, snapshots = [], {}
        bar = progress(total=self.iterations, desc=f"DynaSeg x{n}", unit="it", leave=False)
        for step in range(1, self.iterations + 1):
            raise_if_stopped()
            bar.update()
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(self.device.type, dtype=autocast_dtype or torch.float32,
                                enabled=autocast_dtype is not None):
                pixel_features, output = model(stacked)
            output = output.float()
            if targets is None:
                per_image = pixel_features.float().view(n, -1, h, w)
                targets = torch.tensor([self._target(f) for f in per_image], device=self.device)
            labels = output.detach().view(n, self.n_channels, h, w).argmax(dim=1)
            n_labels = in_use.zero_().scatter_(1, labels.flatten(1), 1.0).sum(dim=1)
            mu = torch.as_tensor(dynamic_mu(self.mu_mode, n_labels, mu=self.mu, alpha=self.alpha),
                                 dtype=torch.float32, device=self.device).expand(n)
            losses = SelfLabelLoss.apply(output, labels, mu)
            # each network's parameters get the gradient of its own image's loss only
            losses.sum().backward()
            optimizer.step()
            records.append(torch.stack([losses.detach(), n_labels, mu]))
            if step in self.snapshots:
                snapshots[step] = labels
            # an image's labels follow each step until its q' first reaches its target, then stay
            kept = labels if kept is None else torch.where(stopped[:, None, None], kept, labels)
            stopped = stopped | (n_labels <= targets)
            if step % self.sync_every == 0 and bool(stopped.all()):
                break
        bar.close()
        history = torch.stack(records).cpu().numpy()
        kept, targets = kept.cpu().numpy(), targets.cpu().numpy()
        snapshots = {step: labels.cpu().numpy() for step, labels in sorted(snapshots.items())}
        fits = []
        for i in range(n):
            reached_at = np.flatnonzero(history[:, 1, i] <= targets[i])
            last = reached_at[0] + 1 if len(reached_at) else len(history)
            fits.append(ClusterFit(
                kept[i], {"dynaseg_target": float(targets[i])},
                [{"loss": float(loss), "n_labels": float(count), "mu": float(weight)}
                 for loss, count, weight in history[:last, :, i]],
                {step: labels[i] for step, labels in snapshots.items() if step <= last}))
        return fits
