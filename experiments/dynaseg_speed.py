"""Seconds per iteration of DynaSeg against the reference loop of differentiable feature clustering, side by side.

Usage::

    FOOTBALL_DATA=../shared/football .venv/bin/python experiments/dynaseg_speed.py \\
        [--frames 2] [--scale 8] [--iterations 20] [--threads 2] [--repeats 5] [--device cpu] [--bf16] [--tuned]
        [--profile]

One process runs, alternately and ``--repeats`` times, the reference script
(``../shared/bench/reference_dfc.py ROOT N SCALE ITERS THREADS``, a plain PyTorch
rewrite of the authors' demo loop, outside the project: run as a subprocess,
its printed ``s/iter`` parsed) and the project's ``DynaSegClusterer`` at the
reference's settings: fixed mu (weight 1), p = q = 100, 2 conv blocks, SGD lr
0.1 momentum 0.9 without weight decay, stop at q' <= 3, the same ``--threads``
torch threads, on the same frames (the reference's rule: ``--frames`` of the
sorted ``images/*.jpg`` drawn by ``numpy.random.default_rng(0)``) read the same
way (RGB / 255 at 1/scale, bilinear). DynaSeg runs in a fresh subprocess too,
so both start with cold caches; its clock covers the whole ``fit_predict``
(network construction included), the reference's only its loop. ``--bf16``
adds a row for ``clusterer.precision=bfloat16`` (not the same labels: see the
option's docstring). ``--device cuda`` runs both loops on the GPU: the
reference with its tensors and its network made there (PyTorch's default
device, and its two host conversions patched to move arrays to and from
it), so it reads the labels back to the host every iteration as the authors'
demo does. ``--profile`` adds the shares of DynaSeg's processor
time that PyTorch's profiler gives the convolutions and batch normalisation,
and the ratio to the reference that a loop of only those would reach. Only
the ratio of medians measured in the same run means anything on a shared
machine.

``--tuned`` also times ``experiment=dynaseg_tuned`` end to end on its 50 frames
(``--tuned-repeats`` runs, not logged to MLflow) and prints the median
seconds per frame over all stages (and of clustering alone, and the process's
CPU seconds per frame, a figure other processes on the machine disturb less)
and the mean Dice. The script prints figures;
it is not a test.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "bench" / "reference_dfc.py"
REFERENCE_LINE = re.compile(r"iterations (\d+) s/iter ([0-9.]+)")
OURS_LINE = re.compile(r"^ours: iterations (\d+) s/iter ([0-9.]+)$", re.M)


def frames_like_the_reference(root: str, n: int, scale: int):
    """The reference's frames: ``n`` of the sorted ``images/*.jpg`` drawn by default_rng(0), as (H, W, 3) RGB / 255."""
    import numpy as np
    from PIL import Image

    files = sorted(glob.glob(f"{root}/images/*.jpg"))
    picked = sorted(np.random.default_rng(0).choice(len(files), size=min(n, len(files)), replace=False))
    frames = []
    for index in picked:
        image = Image.open(files[index])
        size = (image.width // scale, image.height // scale)
        image.draft("RGB", size)
        frames.append(np.asarray(image.convert("RGB").resize(size, Image.BILINEAR), dtype=np.float32) / 255.0)
    return frames


def ours_worker(args) -> None:
    """Fit DynaSeg on each frame at the reference's settings; print total iterations and seconds per iteration."""
    sys.path.insert(0, str(ROOT))
    from src.clustering.dynaseg import DynaSegClusterer

    frames = frames_like_the_reference(args.root, args.frames, args.scale)
    clusterer = DynaSegClusterer(n_channels=100, n_blocks=2, iterations=args.iterations, mu_mode="fixed", mu=1.0,
                                 stop="threshold", min_labels=3, lr=0.1, momentum=0.9, weight_decay=0.0,
                                 snapshots=(), device=args.device, threads=args.threads, precision=args.precision,
                                 seed=0)
    if args.profile:
        profile_shares(clusterer, frames)
        return
    iterations, seconds = 0, 0.0
    for frame in frames:
        start = time.perf_counter()
        clusterer.fit_predict(frame)
        seconds += time.perf_counter() - start
        iterations += len(clusterer.fit_history)
    print(f"ours: iterations {iterations} s/iter {seconds / iterations:.4f}")


def reference_worker(args) -> None:
    """Run the reference script with PyTorch's default device set to ``--device``: its network and zero
    tensors are made there, ``torch.from_numpy`` moves the frame there and ``Tensor.numpy`` reads back to the host,
    the script itself unchanged."""
    import runpy

    import torch

    device = torch.device(args.device)
    torch.set_default_device(device)
    from_numpy, to_numpy = torch.from_numpy, torch.Tensor.numpy
    torch.from_numpy = lambda array: from_numpy(array).to(device)
    torch.Tensor.numpy = lambda tensor, *rest, **options: to_numpy(tensor.detach().cpu(), *rest, **options)
    sys.argv = [args.reference, args.root, str(args.frames), str(args.scale), str(args.iterations), str(args.threads)]
    runpy.run_path(args.reference, run_name="__main__")


# PyTorch's CPU operators of the network's layers, by the group they are counted in
PROFILE_GROUPS = {"aten::mkldnn_convolution": "convolution", "aten::convolution_backward": "convolution",
                  "aten::native_batch_norm": "batch norm", "aten::native_batch_norm_backward": "batch norm"}


def profile_shares(clusterer, frames) -> None:
    """Print the shares of the processor time that PyTorch's profiler gives the convolutions (forward and backward),
    batch normalisation and everything else, over fits of ``frames`` after an unprofiled first fit."""
    from torch.profiler import ProfilerActivity, profile

    clusterer.fit_predict(frames[0])
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for frame in frames:
            clusterer.fit_predict(frame)
    spent = {"convolution": 0.0, "batch norm": 0.0, "other": 0.0}
    for event in profiler.key_averages():
        spent[PROFILE_GROUPS.get(event.key, "other")] += event.self_cpu_time_total
    total = sum(spent.values())
    print("profile: " + ", ".join(f"{name} {value / total:.3f}" for name, value in spent.items()))


def timed(command: list[str], pattern: re.Pattern) -> tuple[int, float]:
    done = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, "LAB_PROGRESS": "0"})
    match = pattern.search(done.stdout)
    if match is None:
        raise SystemExit(f"no timing line in the output of {' '.join(command)}:\n{done.stdout}{done.stderr}")
    return int(match.group(1)), float(match.group(2))


def tuned(args) -> None:
    """Median seconds per frame (all stages) and mean Dice of ``experiment=dynaseg_tuned`` over repeats."""
    sys.path.insert(0, str(ROOT))
    from hydra import compose, initialize_config_dir

    from src.compose import build_stages
    from src.pipeline import evaluate

    os.environ.setdefault("FOOTBALL_DATA", args.root)
    seconds, cluster, cpu, dice = [], [], [], []
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        cfg = compose("config", overrides=["experiment=dynaseg_tuned", "logger.log_images=false", *args.override])
    for _ in range(args.tuned_repeats):
        stages = build_stages(cfg)
        started = time.process_time()
        # as src.run calls it (frames decoded, features, clustering, post-processing, metrics)
        _, summary = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess,
                              silhouette_sample=cfg.silhouette_sample, seed=cfg.seed, threads=cfg.threads,
                              workers=stages.workers)
        seconds.append(summary["seconds_per_image"])
        cluster.append(summary["seconds_cluster"])
        cpu.append((time.process_time() - started) / summary["n_frames"])
        dice.append(summary["dice_mean"])
    print(f"\nexperiment=dynaseg_tuned {' '.join(args.override)}: {int(summary['n_frames'])} frames, "
          f"{cfg.clusterer.threads} torch threads")
    print(f"s/frame (all stages) median {statistics.median(seconds):.3f} of {[round(s, 3) for s in seconds]} "
          f"(clustering {statistics.median(cluster):.3f}; process CPU s/frame {statistics.median(cpu):.3f}); "
          f"mean Dice {statistics.median(dice):.4f} (equal over repeats: {len(set(dice)) == 1})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.environ.get("FOOTBALL_DATA", str(ROOT.parent / "shared" / "football")))
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--scale", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference", default=str(REFERENCE))
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where both loops run")
    parser.add_argument("--bf16", action="store_true", help="also time clusterer.precision=bfloat16")
    parser.add_argument("--tuned", action="store_true", help="also time experiment=dynaseg_tuned")
    parser.add_argument("--profile", action="store_true",
                        help="also profile DynaSeg float32: the processor time's shares by operator group")
    parser.add_argument("--tuned-only", action="store_true", help="time experiment=dynaseg_tuned only")
    parser.add_argument("--tuned-repeats", type=int, default=1)
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides for --tuned")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for option in ("frames", "scale", "iterations", "threads", "repeats", "tuned_repeats"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')}={getattr(args, option)} is out of range; give at least 1")
    if args.worker:
        ours_worker(args)
        return
    if args.reference_worker:
        reference_worker(args)
        return
    if not args.tuned_only:
        common = [str(args.frames), str(args.scale), str(args.iterations), str(args.threads)]
        settings = ["--root", args.root, "--frames", str(args.frames), "--scale", str(args.scale), "--iterations",
                    str(args.iterations), "--threads", str(args.threads), "--device", args.device]
        reference = ([sys.executable, args.reference, args.root, *common] if args.device == "cpu" else
                     [sys.executable, __file__, "--reference-worker", "--reference", args.reference, *settings])
        rows = {"reference": reference, "DynaSeg float32": [sys.executable, __file__, "--worker", *settings]}
        if args.bf16:
            rows["DynaSeg bfloat16"] = [*rows["DynaSeg float32"], "--precision", "bfloat16"]
        times, iterations = {name: [] for name in rows}, {}
        for repeat in range(args.repeats):
            for name, command in rows.items():
                iterations[name], per_iteration = timed(command, REFERENCE_LINE if name == "reference" else OURS_LINE)
                times[name].append(per_iteration)
            print(f"repeat {repeat + 1}/{args.repeats}: "
                  + ", ".join(f"{name} {values[-1]:.4f}" for name, values in times.items()), flush=True)
        reference = statistics.median(times["reference"])
        print(f"\n{args.frames} frames at scale {args.scale}, {args.iterations} iterations at most, {args.threads} "
              f"torch threads, on {args.device}, {args.repeats} alternating repeats")
        print(f"{'loop':18s} {'iterations':>10s} {'median s/iter':>14s} {'min s/iter':>11s} {'reference/this':>15s}")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:18s} {iterations[name]:10d} {median:14.4f} {min(values):11.4f} {reference / median:15.2f}")
        if args.profile:
            done = subprocess.run([*rows["DynaSeg float32"], "--profile"], capture_output=True, text=True, check=True,
                                  env={**os.environ, "LAB_PROGRESS": "0"})
            shares = dict(re.findall(r"([a-z ]+) ([0-9.]+)", done.stdout.split("profile:", 1)[1]))
            shares = {name.strip(): float(value) for name, value in shares.items()}
            ratio = reference / statistics.median(times["DynaSeg float32"])
            print(f"\nDynaSeg float32 under PyTorch's profiler (processor time): "
                  + ", ".join(f"{name} {100 * value:.0f}%" for name, value in shares.items())
                  + f"; a loop that ran only these convolutions would be {ratio / shares['convolution']:.2f}x the "
                  f"reference, one that also kept the batch normalisation "
                  f"{ratio / (shares['convolution'] + shares['batch norm']):.2f}x")
    if args.tuned or args.tuned_only:
        tuned(args)


if __name__ == "__main__":
    main()
