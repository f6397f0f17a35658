"""Trains the autoencoder, the reconstruction U-Net and the supervised U-Net, clusters the learned features,
and writes experiments/LEARNED.md.

Usage: ``FOOTBALL_DATA=../shared/football .venv/bin/python experiments/learned_report.py [--epochs N]``
Training uses the 150 frames outside the report's 50-frame sample (seed 0);
every row is scored on those 50 frames. Each training and each clustering is
an MLflow run in the project's store.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from sklearn.linear_model import LinearRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import ROOT, compose_cfg  # noqa: E402

from src.compose import build_stages  # noqa: E402
from src.run import run_and_log  # noqa: E402
from src.train import run_training  # noqa: E402
from src.files import write_text_whole  # noqa: E402

MODELS_DIR = ROOT / "models"
WEIGHTED = {"autoencoder": MODELS_DIR / "autoencoder_reconstruction_weighted",
            "unet_recon": MODELS_DIR / "unet_reconstruction_weighted"}
# feature sets clustered by k-means: title -> overrides
LEARNED_FEATURES = {
    "autoencoder code": ["features=autoencoder"],
    "autoencoder last decoder level": ["features=autoencoder", "features.blocks.learned.layer=dec3"],
    "autoencoder code, foreground-weighted MSE": [
        "features=autoencoder", f"features.blocks.learned.checkpoint={WEIGHTED['autoencoder']}"],
    "U-Net (reconstruction) last decoder level": ["features=unet_recon"],
    "U-Net (reconstruction) last decoder level, foreground-weighted MSE": [
        "features=unet_recon", f"features.blocks.learned.checkpoint={WEIGHTED['unet_recon']}"],
}


def train_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=["data.cache_frames=false", *overrides])


def colour_r2(overrides: list[str], n_frames: int = 10, n_pixels: int = 4000) -> float:
    """Share of the feature variance a linear map of Lab colour explains (pixels of ``n_frames`` frames)."""
    cfg = compose_cfg([*overrides, f"data.n_images={n_frames}"])
    stages = build_stages(cfg)
    colour = build_stages(compose_cfg(["features=lab", f"data.n_images={n_frames}"])).features
    rng = np.random.default_rng(0)
    scores = []
    for image_id in stages.data.image_ids:
        frame = stages.data.frame(image_id)
        features = stages.features(frame)
        features = features.reshape(-1, features.shape[-1])
        lab = colour(frame).reshape(-1, 3)
        pick = rng.choice(len(lab), size=min(n_pixels, len(lab)), replace=False)
        scores.append(LinearRegression().fit(lab[pick], features[pick]).score(lab[pick], features[pick]))
    return float(np.mean(scores))


def frame_size(cfg) -> tuple[str, str]:
    """The scale and the ``WxH`` working size of the first frame of ``cfg``'s dataset."""
    dataset = build_stages(cfg).data
    frame = dataset.frame(dataset.image_ids[0])
    return str(frame.scale), f"{frame.image.shape[1]}x{frame.image.shape[0]}"


def cnn_title(overrides: list[str]) -> str:
    """``CNN (PCA n, <the network the features ran>)`` of a CNN feature set, as its config and run say."""
    stages = build_stages(compose_cfg(overrides))
    return (f"CNN (PCA {compose_cfg(overrides).features.blocks.cnn.n_components}, "
            f"{stages.features.tags['backbone.used']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30, help="epochs of the reconstruction models")
    parser.add_argument("--supervised-epochs", type=int, default=30, help="epochs of the supervised U-Nets")
    args = parser.parse_args()
    if not os.environ.get("FOOTBALL_DATA"):
        raise SystemExit("error: FOOTBALL_DATA is not set; point it at the real frames (../shared/football)")
    trained = {}
    for name, model, extra in (
            ("autoencoder", "autoencoder", [f"train.epochs={args.epochs}"]),
            ("U-Net (reconstruction)", "unet_recon", [f"train.epochs={args.epochs}"]),
            ("autoencoder, foreground-weighted MSE", "autoencoder",
             [f"train.epochs={args.epochs}", "train.loss=weighted_mse", f"out_dir={WEIGHTED['autoencoder']}"]),
            ("U-Net (reconstruction), foreground-weighted MSE", "unet_recon",
             [f"train.epochs={args.epochs}", "train.loss=weighted_mse", f"out_dir={WEIGHTED['unet_recon']}"]),
            ("supervised U-Net, scale 8", "unet_supervised",
             [f"train.epochs={args.supervised_epochs}", f"out_dir={MODELS_DIR}/unet_segmentation_scale8"]),
            ("supervised U-Net, scale 4", "unet_supervised",
             [f"train.epochs={args.supervised_epochs}", "data.scale=4", "train.batch_size=4",
              f"out_dir={MODELS_DIR}/unet_segmentation_scale4"])):
        trained[name] = run_training(train_cfg([f"model={model}", *extra]))
    reference = trained["supervised U-Net, scale 8"][0]["dice_mean"]
    rows = ["| method | mean Dice | mean IoU | Hungarian mIoU | fraction of supervised Dice (scale 8) "
            "| s/image | MLflow run |", "|---|---|---|---|---|---|---|"]
    clustered = {}
    for title, overrides in {"Lab colour": ["features=lab"], **LEARNED_FEATURES}.items():
        summary, run_id = run_and_log(compose_cfg(overrides))
        title = f"{title} + k-means"
        clustered[title] = summary
        rows.append(f"| {title} | {summary['dice_mean']:.3f} | {summary['iou_mean']:.3f} "
                    f"| {summary['hungarian_miou_mean']:.3f} | {summary['dice_mean'] / reference:.2f} "
                    f"| {summary['seconds_per_image']:.3f} | `{run_id[:8]}` |")
    for title in ("supervised U-Net, scale 8", "supervised U-Net, scale 4"):
        scores, run_id = trained[title]
        rows.append(f"| {title} (SUPERVISED reference) | {scores['dice_mean']:.3f} | {scores['iou_mean']:.3f} "
                    f"| {scores['hungarian_miou_mean']:.3f} | {scores['dice_mean'] / reference:.2f} "
                    f"| {scores['seconds_per_image']:.3f} | `{run_id[:8]}` |")
    training = ["| model | frames | epochs | final training loss | held-out reconstruction MSE / PSNR (dB) "
                "| training s (total, per epoch) | MLflow run |", "|---|---|---|---|---|---|---|"]
    for title, (scores, run_id) in trained.items():
        held_out = (f"{scores['recon_mse']:.5f} / {scores['recon_psnr']:.1f}" if "recon_mse" in scores
                    else "(segmentation)")
        epochs = args.epochs if "supervised" not in title else args.supervised_epochs
        training.append(f"| {title} | {scores['train_frames']:.0f} | {epochs} | {scores['train_loss_final']:.5f} | {held_out} "
                        f"| {scores['train_seconds']:.0f}, {scores['train_seconds_per_epoch']:.1f} | `{run_id[:8]}` |")
    cnn = ["features=resnet", "features.blocks.color.weight=0", "features.blocks.position.weight=0"]
    r2 = {title: colour_r2(overrides) for title, overrides in (*LEARNED_FEATURES.items(), (cnn_title(cnn), cnn))}
    reconstruction = {title: scores for title, (scores, _) in trained.items() if "recon_mse" in scores}
    working = frame_size(compose_cfg([]))
    lines = [
        "# Learned features by reconstruction, and a supervised reference",
        "",
        f"Written by `experiments/learned_report.py` on {date.today()} ({platform.node()}, {os.cpu_count()} cores, "
        f"{'CUDA' if torch.cuda.is_available() else 'CPU'}). Models are trained on the {trained['autoencoder'][0]['train_frames']:.0f} frames outside the "
        "report's 50-frame sample (seed 0) and every row "
        f"is scored on those 50 frames, at scale {working[0]} ({working[1]}) unless said otherwise. Clustering rows use k-means "
        f"(k = {compose_cfg([]).clusterer.n_clusters}) and the `players` chain, like the REPORT.md rows.",
        "",
        "## Scores on the 50 evaluation frames", "", *rows, "",
        "## Training", "", *training, "",
        "## Does the U-Net copy its input?", "",
        "Held-out reconstruction error (plain MSE on the 50 frames, whatever the training loss): "
        + ", ".join(f"{title}: MSE {scores['recon_mse']:.5f} (PSNR {scores['recon_psnr']:.1f} dB)"
                    for title, scores in reconstruction.items()) + ". "
        "The foreground-weighted loss weighs pixels farther than "
        f"ΔE {train_cfg([]).train.foreground_distance:g} from the frame's median colour "
        f"{1 + train_cfg([]).train.foreground_weight:g} times. "
        "Share of the feature variance explained by a linear map of the pixel's Lab colour (R², 10 frames, "
        "4000 pixels each): " + ", ".join(f"{k} {v:.2f}" for k, v in r2.items()) + ".",
        "",
    ]
    write_text_whole(ROOT / "experiments" / "LEARNED.md", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
