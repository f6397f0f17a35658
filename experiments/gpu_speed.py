"""Issue 17's GPU rows (target 5), measured in one run on a machine with CUDA.

Usage, on the GPU machine (``experiments/device_pack.py`` packs the frames,
the reference script and the wheels that travel there, and prints the whole
command)::

    FOOTBALL_DATA=.device/football python3 experiments/gpu_speed.py [--device cuda] [--frames 8] [--scale 4]
        [--iterations 200] [--batches 1 2 4 8] [--precisions float32] [--repeats 3] [--reference PATH]
        [--epochs 30] [--out FILE]

Three parts, each printed as it ends:

1. DynaSeg (``clusterer=dynaseg`` as configured, ``data.scale=--scale``,
   ``clusterer.iterations=--iterations``) on ``--frames`` frames, once per
   ``clusterer.images_per_batch`` in ``--batches`` and ``clusterer.precision``
   in ``--precisions`` (bfloat16 gives other labels): median over ``--repeats``
   of the seconds per frame of clustering and of all stages, the iterations
   run per frame and the mean Dice. The batch size with the fewest seconds
   per frame in float32 is the one to use.
2. The reference loop and DynaSeg at its settings, alternately on the same
   device (``dynaseg_speed.py --device``).
3. The supervised U-Net's training (``python -m src.train
   model=unet_supervised``, ``--epochs`` epochs on the frames outside the
   evaluation sample of ``--frames``): its seconds and seconds per epoch.

``--out`` also writes the printed markdown to a file. ``--device cpu`` with
small settings checks the script on a machine without a GPU; its figures then
say nothing about target 5.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "bench" / "reference_dfc.py"
# the section's title, under which experiments/speed_report.py --gpu splices this run's output into SPEED.md
TITLE = "GPU (issue 17, target 5)"
TRAINED = re.compile(r"train_seconds ([0-9.]+), train_seconds_per_epoch ([0-9.]+)")


def device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return f"CUDA ({torch.cuda.get_device_name()}, PyTorch {torch.__version__})"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, PyTorch {torch.__version__})"


def dynaseg_batches(args, store: str) -> list[str]:
    """Part 1: a row per ``images_per_batch``, and the fastest one."""
    from hydra import compose, initialize_config_dir

    from src.compose import build_stages
    from src.pipeline import evaluate

    base = ["clusterer=dynaseg", f"data.scale={args.scale}", f"data.n_images={args.frames}",
            f"clusterer.iterations={args.iterations}", f"clusterer.device={args.device}", "clusterer.snapshots=[]",
            "logger.log_images=false", f"logger.tracking_uri={store}"]
    lines = [f"`clusterer=dynaseg` at scale {args.scale} (T = {args.iterations} iterations at most, its stop rule as "
             f"configured) on {args.frames} frames, median of {args.repeats} runs in one process (the first pays "
             "the kernels' start-up):", "",
             "| precision | images_per_batch | s/frame clustering | s/frame all stages | iterations per frame "
             "| mean Dice |", "|---|---|---|---|---|---|"]
    fastest = None
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base=None):
        for precision, per_batch in [(p, b) for p in args.precisions for b in args.batches]:
            cfg = compose("config", overrides=[*base, f"clusterer.images_per_batch={per_batch}",
                                               f"clusterer.precision={precision}"])
            cluster, total, summary = [], [], {}
            for _ in range(args.repeats):
                stages = build_stages(cfg)
                _, summary = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess,
                                      silhouette_sample=cfg.silhouette_sample, seed=cfg.seed, threads=cfg.threads,
                                      workers=stages.workers)
                cluster.append(summary["seconds_cluster"])
                total.append(summary["seconds_per_image"])
            lines.append(f"| {precision} | {per_batch} | {statistics.median(cluster):.3f} | "
                         f"{statistics.median(total):.3f} | "
                         f"{summary['dynaseg_iterations_mean']:.1f} | {summary['dice_mean']:.4f} |")
            print(lines[-1], flush=True)
            if precision == "float32" and (fastest is None or statistics.median(total) < fastest[1]):
                fastest = (per_batch, statistics.median(total))
    if fastest is not None:
        lines += ["", f"Fastest in float32: `clusterer.images_per_batch={fastest[0]}`, **{fastest[1]:.3f} s/frame** "
                      "(target: at most 1 s)."]
    return lines


def reference_side_by_side(args) -> list[str]:
    """Part 2: ``dynaseg_speed.py`` on the device, its table as printed."""
    command = [sys.executable, str(ROOT / "experiments" / "dynaseg_speed.py"), "--root", args.root,
               "--frames", str(args.reference_frames), "--scale", str(args.scale), "--iterations",
               str(args.reference_iterations), "--repeats", str(args.repeats), "--device", args.device,
               "--reference", str(args.reference)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"error: dynaseg_speed.py failed:\n{done.stderr[-2000:]}")
    shown = " ".join(part if "/" not in part else Path(part).name for part in command[1:])
    return [f"`python {shown}`:", "", "```", done.stdout.strip(), "```"]


def unet_training(args, store: str) -> list[str]:
    """Part 3: ``src.train model=unet_supervised`` on the device; its logged seconds."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "src.train", "model=unet_supervised", f"train.device={args.device}",
                   f"train.epochs={args.epochs}", f"data.n_images={args.eval_frames}", f"out_dir={folder}/model",
                   f"logger.tracking_uri={store}", f"hydra.run.dir={folder}/run"]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "FOOTBALL_DATA": args.root, "CI": "1"})
    found = TRAINED.search(done.stdout + done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"error: src.train failed:\n{(done.stdout + done.stderr)[-2000:]}")
    frames = args.frames_in_root - args.eval_frames
    return [f"`python -m src.train model=unet_supervised train.device={args.device} train.epochs={args.epochs} "
            f"data.n_images={args.eval_frames}`: {frames} training frames (all but the evaluation sample), "
            f"**{float(found.group(1)):.1f} s** of training, {float(found.group(2)):.2f} s per epoch (median)."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.environ.get("FOOTBALL_DATA", str(ROOT.parent / "shared" / "football")))
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--precisions", nargs="+", default=["float32"], choices=("float32", "bfloat16"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--reference-frames", type=int, default=2)
    parser.add_argument("--reference-iterations", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--eval-frames", type=int, default=8, help="the U-Net's evaluation sample")
    parser.add_argument("--skip", nargs="*", default=[], choices=("dynaseg", "reference", "unet"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    images = Path(args.root) / "images"
    if not images.is_dir():
        raise SystemExit(f"error: --root={args.root} has no images/ folder; point FOOTBALL_DATA at the frames")
    args.frames_in_root = len(list(images.glob("*.jpg")))
    if "reference" not in args.skip and not args.reference.is_file():
        raise SystemExit(f"error: --reference={args.reference} does not exist; point it at reference_dfc.py")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("error: --device=cuda but no CUDA device is visible; use --device cpu to check the script")
    sys.path.insert(0, str(ROOT))
    os.environ["FOOTBALL_DATA"] = args.root
    os.environ.setdefault("LAB_PROGRESS", "0")
    lines = [f"### {TITLE}", "",
             f"Measured on {date.today().isoformat()} by `experiments/gpu_speed.py` on {device_name(args.device)}.",
             ""]
    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:///{folder}/mlflow.db"
        parts = {"dynaseg": lambda: dynaseg_batches(args, store), "reference": lambda: reference_side_by_side(args),
                 "unet": lambda: unet_training(args, store)}
        for name, part in parts.items():
            if name in args.skip:
                continue
            done = [*part(), ""]
            print("\n".join(done), flush=True)
            lines += done
    if args.out:
        args.out.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
