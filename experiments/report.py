"""Runs the method families on the real frames and writes experiments/REPORT.md and its figures.

Usage: ``FOOTBALL_DATA=../shared/football .venv/bin/python experiments/report.py [--variants-only]``
(about 15 minutes on 2 cores). Every number in the report comes from the runs
below; the table rows are also MLflow runs in the project's store.
``--variants-only`` measures and rewrites only the section on frames unlike
the source (a minute), after a change to the post-processing.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from PIL import Image  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.neighbors import NearestNeighbors  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src import viz  # noqa: E402
from src.benchmark import format_table, measure  # noqa: E402
from src.data import FootballDataset  # noqa: E402
from src.data.variants import make_variant  # noqa: E402
from src.pipeline import evaluate  # noqa: E402
from src.compose import build, build_stages  # noqa: E402
from src.run import run_and_log  # noqa: E402
from src.files import write_text_whole  # noqa: E402

FIGURES = ROOT / "experiments" / "figures"
GENERALITY = ROOT / "experiments" / "GENERALITY.md"
SHOT_TYPES = ROOT / "experiments" / "SHOT_TYPES.md"
SHOT_TYPES_SECTION = "## Shot types: k-means of whole frames on pixels, PCA and autoencoder codes"
AUTOENCODER_QUESTION = "**Autoencoder codes and k-means.**"
GRAPH_METHODS = ROOT / "experiments" / "GRAPH_METHODS.md"
GRAPH_SECTION = "## Graph methods: normalized cuts and GrabCut"
SPEED = ROOT / "experiments" / "SPEED.md"
SPEED_SECTION = "## Speed"
# written by generality_report.py; kept when this script rewrites the rest of the report
GENERALITY_SECTION = "## Generality on other cameras: touchline zooms, edge crops, touchline frames"
CLUSTERERS = ("kmeans", "minibatch_kmeans", "gmm", "dbscan", "hdbscan", "meanshift", "slic", "felzenszwalb",
              "agglomerative", "kmeans_auto", "slic_kmeans")
TABLE = (
    [(f"features={f}", "kmeans", "players", [f"features={f}"])
     for f in ("rgb", "lab", "hsv", "color_position", "color_texture", "resnet")]
    + [("features=color_position", c, "players", [f"clusterer={c}"]) for c in CLUSTERERS if c != "kmeans"]
    + [("features=color_position", "kmeans_auto (elbow)", "players", ["clusterer=kmeans_auto",
                                                                     "clusterer.criterion=elbow"])]
    + [("features=resnet", label, "players", ["features=resnet", f"clusterer={c}"] + extra)
       for c, label, extra in (("dbscan", "dbscan (eps auto: the README's command)", []),
                               ("dbscan", "dbscan (eps 1.8)", ["clusterer.eps=1.8"]), ("hdbscan", "hdbscan", []),
                               ("gmm", "gmm", []))]
    + [("features=resnet", "dbscan (eps 1.8)", "noise_players", ["experiment=cnn_dbscan_noise"])]
    + [(f"features=resnet backbone={b}", "kmeans", "players", ["features=resnet", f"backbone={b}"])
       for b in ("efficientnet_lite1", "efficientnet_lite2", "mobilenetv2_100")]
    + [("features=color_position", "kmeans", p, [f"postprocess={p}"])
       for p in ("small_clusters", "players_morphology", "players_rag")]
    + [("features=color_position, scale 4", "kmeans", "players", ["data.scale=4"]),
       ("features=color_position, scale 16", "kmeans", "players", ["data.scale=16"]),
       ("experiment=best", None, None, ["experiment=best"])]
)
OVERLAY_METHODS = [("default", []), ("best", ["experiment=best"]), ("CNN + k-means", ["experiment=cnn_kmeans"]),
                   ("CNN + DBSCAN noise", ["experiment=cnn_dbscan_noise"]), ("DBSCAN colour", ["clusterer=dbscan"]),
                   ("SLIC + k-means", ["clusterer=slic_kmeans"])]
BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "mobilenetv2_100", "resnet18",
             "resnet50", "hrnet_w18_small_v2")


def compose_cfg(overrides: list[str]):
    # every row decodes its frames, so its seconds per image include loading like a fresh run's
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name="config", overrides=["logger.log_images=false", "data.cache_frames=false",
                                                         *overrides])


def results_of(overrides: list[str]):
    cfg = compose_cfg(overrides)
    stages = build_stages(cfg)
    results, summary = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess,
                                silhouette_sample=cfg.silhouette_sample, seed=cfg.seed, threads=cfg.threads)
    return cfg, stages, results, summary


def method_table() -> tuple[list[str], list[dict]]:
    lines = ["| features | clusterer | postprocess | mean Dice | mean IoU | pooled Dice | silhouette | inertia "
             "| clusters | components / GT blobs | s/image | MLflow run |", "|" + "---|" * 12]
    rows = []
    for features, clusterer, postprocess, overrides in TABLE:
        cfg = compose_cfg(overrides)
        if clusterer is None:
            # a tuned experiment is described by its own settings, read from its config
            clusterer = f"kmeans (k={cfg.clusterer.n_clusters}, {cfg.clusterer.n_votes} voting runs, swept)"
            postprocess = f"players (field ΔE {cfg.postprocess.steps.field.max_distance:.1f})"
        summary, run_id = run_and_log(cfg)
        rows.append(summary)
        lines.append(
            f"| {features} | {clusterer} | {postprocess} | {summary['dice_mean']:.3f} | {summary['iou_mean']:.3f} "
            f"| {summary['dice_pooled']:.3f} | {summary['silhouette_mean']:.3f} | {summary['inertia_mean']:.0f} "
            f"| {summary['n_clusters_mean']:.1f} | {summary['n_components_mean']:.1f} / "
            f"{summary['n_instances_mean']:.1f} | {summary['seconds_per_image']:.3f} | `{run_id[:8]}` |")
    return lines, rows


def generality() -> list[str]:
    source = FootballDataset(os.environ["FOOTBALL_DATA"], n_images=20, seed=1)
    lines = ["| frames | default: mean Dice | best: mean Dice |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        roots = {"source frames (20, seed 1)": source.root}
        roots["close-ups (largest player at 10% of the frame)"] = make_variant(source, "closeup", f"{tmp}/closeup")
        roots["other kits (player hue turned 180°)"] = make_variant(source, "kits", f"{tmp}/kits",
                                                                   kit_hue_shift=180.0)
        roots["other pitch and light (hue +40°, brightness x0.7)"] = make_variant(source, "pitch", f"{tmp}/pitch")
        for title, root in roots.items():
            n = ["data.n_images=20", "data.seed=1"] if root == source.root else ["data.n_images=null"]
            dice = [evaluate_only([f"data.root={root}", *n, *extra]) for extra in ([], ["experiment=best"])]
            lines.append(f"| {title} | {dice[0]:.3f} | {dice[1]:.3f} |")
    return lines


def evaluate_only(overrides: list[str]) -> float:
    return results_of(overrides)[3]["dice_mean"]


def overlay_figure() -> str:
    columns = []
    for title, overrides in OVERLAY_METHODS:
        _, _, results, _ = results_of(["data.n_images=3", *overrides])
        columns.append((title, [viz.overlay(r.frame.image, r.player.mask, r.frame.mask) for r in results]))
    fig, axes = plt.subplots(3, len(columns), figsize=(3.2 * len(columns), 6.2))
    for col, (title, pictures) in enumerate(columns):
        for row, picture in enumerate(pictures):
            axes[row, col].imshow(picture)
            axes[row, col].axis("off")
        axes[0, col].set_title(title, fontsize=9)
    fig.suptitle("green: players found, red: false positives, blue: players missed", fontsize=9)
    fig.tight_layout()
    path = FIGURES / "overlays.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.relative_to(ROOT / "experiments").as_posix()


def k_curves() -> tuple[str, list[str]]:
    ks = [2, 3, 4, 6, 8, 10, 12, 16, 20, 24]
    _, _, results, _ = results_of(["clusterer=kmeans_auto", f"clusterer.k_values=[{','.join(map(str, ks))}]"])
    inertia = np.array([[r.metrics[f"inertia_k{k}"] for k in ks] for r in results])
    silhouette = np.array([[r.metrics[f"silhouette_k{k}"] for k in ks] for r in results])
    chosen = [r.metrics["chosen_k"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(ks, inertia.mean(axis=0) / inertia.mean(axis=0)[0], "o-")
    left.set(xlabel="k", ylabel="inertia / inertia at k=2", title="inertia (mean of 50 frames)")
    right.plot(ks, np.nanmean(silhouette, axis=0), "o-")
    right.set(xlabel="k", ylabel="silhouette", title="silhouette (mean of 50 frames)")
    fig.tight_layout()
    path = FIGURES / "k_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    counts = {int(k): chosen.count(k) for k in sorted(set(chosen))}
    lines = [f"Per-frame k chosen by silhouette: {counts} (k: frames). Mean silhouette by k: "
             + ", ".join(f"{k}: {v:.3f}" for k, v in zip(ks, np.nanmean(silhouette, axis=0))) + "."]
    return path.relative_to(ROOT / "experiments").as_posix(), lines


def dbscan_noise_evidence() -> list[str]:
    cfg, stages, results, summary = results_of(["experiment=cnn_dbscan_noise", "data.n_images=10"])
    ratios, player_noise, background_noise = [], [], []
    for result in results:
        features = stages.features(result.frame)
        flat = features.reshape(-1, features.shape[-1])
        sample = flat[np.random.default_rng(0).choice(len(flat), 4000, replace=False)]
        distance = NearestNeighbors(n_neighbors=cfg.clusterer.min_samples).fit(sample).kneighbors(flat)[0][:, -1]
        truth = result.frame.mask.reshape(-1)
        ratios.append(np.median(distance[truth]) / np.median(distance[~truth]))
        noise = result.labels.reshape(-1) < 0
        player_noise.append(noise[truth].mean())
        background_noise.append(noise[~truth].mean())
    return [
        f"On 10 frames, in the CNN feature space of `experiment=cnn_dbscan_noise` (PCA-16 CNN + Lab + position, "
        f"standardized), the distance from a player pixel to its {cfg.clusterer.min_samples}th nearest sampled "
        f"pixel is {statistics.median(ratios):.1f}x that of a background pixel (median over frames). With "
        f"eps={cfg.clusterer.eps} and min_samples={cfg.clusterer.min_samples}, DBSCAN labels "
        f"{100 * statistics.mean(player_noise):.0f}% of player pixels as noise against "
        f"{100 * statistics.mean(background_noise):.0f}% of background pixels.",
        "",
        "Players are few (about 2% of a frame) and varied: every shirt, shorts, skin and boot pixel sits in a "
        "small, spread-out patch of feature space, and the CNN's receptive field mixes each with the grass "
        "around it, which spreads them further. Pitch, stands and boards fill dense regions. A density "
        "threshold between the two leaves the players below it, so they come out as noise. The noise also "
        "holds edges, lines and crowd detail; the `noise_players` chain keeps only noise the field encloses, "
        "clusters it again by colour to drop field-coloured parts, and removes thin and tiny remains.",
    ]


def benchmarks() -> list[str]:
    lines = ["| clusterer | s/image at scale 8 | s/image at scale 4 |", "|---|---|---|"]
    for clusterer in CLUSTERERS:
        cells = []
        for scale in (8, 4):
            rows = measure(compose_cfg([f"clusterer={clusterer}", f"data.scale={scale}", "data.n_images=10"]),
                           repeats=3)
            cells.append(dict((name, median) for name, median, _ in rows)["total"])
        lines.append(f"| {clusterer} | {cells[0]:.3f} | {cells[1]:.3f} |")
    return lines


def cnn_timing() -> list[str]:
    dataset = FootballDataset(os.environ["FOOTBALL_DATA"], n_images=10, scale=8)
    frames = [dataset.frame(i) for i in dataset.image_ids]
    lines = ["| backbone (stages 1, 2) | weights | forward s/image | decode 480x270 + forward + upsample + PCA "
             "s/image |", "|---|---|---|---|"]
    for name in BACKBONES:
        overrides = [f"backbone={name}", "features=resnet", "features.blocks.cnn.cache_dir=null"]
        if name.startswith(("resnet", "hrnet")):
            overrides.append("backbone.weights=random")  # timing only: their ImageNet weights are not here
        cfg = compose_cfg(overrides)
        cnn = build(cfg.features, "features").blocks["cnn"]
        inputs = [cnn.network_input(f) for f in frames]
        cnn.backbone(inputs[0])
        forward, total = [], []
        for picture in inputs:
            start = time.perf_counter()
            cnn.backbone(picture)
            forward.append(time.perf_counter() - start)
        for frame in frames:
            start = time.perf_counter()
            cnn(frame)
            total.append(time.perf_counter() - start)
        lines.append(f"| {cnn.backbone.name} | {cnn.backbone.weights} | {statistics.median(forward):.3f} "
                     f"| {statistics.median(total):.3f} |")
    return lines


def dice_iou_answer(rows: list[dict]) -> str:
    dice = [r["dice_mean"] for r in rows]
    iou = [r["iou_mean"] for r in rows]
    rho = spearmanr(dice, iou).statistic
    return (f"Over the {len(rows)} configurations of the table, ranking by mean Dice and by mean IoU agree with "
            f"Spearman ρ = {rho:.3f}: per image IoU = Dice / (2 − Dice), a monotone map, so only means over "
            "images can reorder methods.")


def autoencoder_answer() -> str:
    """The third question's paragraph: the measured answer of ``experiments/shot_types.py``, where it has run."""
    answer = None
    if SHOT_TYPES.is_file():
        answer = next((line for line in SHOT_TYPES.read_text().splitlines() if line.startswith("**Cost.**")), None)
    if answer is None:
        return f"{AUTOENCODER_QUESTION} Not measured yet: run `experiments/shot_types.py`."
    return (f"{AUTOENCODER_QUESTION} Measured by `experiments/shot_types.py` (k-means of the 200 development "
            f"frames into shot types; details in the section on shot types below). {answer}")


def refresh_autoencoder_answer(path: Path) -> None:
    """Put ``autoencoder_answer()`` in place of the third question's paragraph of an existing report."""
    lines = path.read_text().splitlines()
    write_text_whole(path, "\n".join(autoencoder_answer() if line.startswith(AUTOENCODER_QUESTION) else line
                              for line in lines) + "\n")


def splice(path: Path, title: str, body: list[str]) -> None:
    """Replace the section ``title`` of a markdown file (up to the next ``## ``) with ``body``, or append it."""
    text = path.read_text() if path.is_file() else ""
    section = "\n".join([title, "", *body, ""]) + "\n"
    pattern = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    write_text_whole(path, text)


VARIANTS_SECTION = "## Generality: `experiment=best` on frames unlike the source"
VARIANTS_NOTE = "Variants written by `src/data/variants.py` from 20 real frames (seed 1)."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants-only", action="store_true",
                        help="rewrite only REPORT.md's section on the generality variants")
    args = parser.parse_args()
    if not os.environ.get("FOOTBALL_DATA"):
        raise SystemExit("error: FOOTBALL_DATA is not set; point it at the real frames (../shared/football)")
    if args.variants_only:
        splice(ROOT / "experiments" / "REPORT.md", VARIANTS_SECTION, [VARIANTS_NOTE, "", *generality()])
        return
    FIGURES.mkdir(parents=True, exist_ok=True)
    table, rows = method_table()
    overlays = overlay_figure()
    curves, curve_lines = k_curves()
    default_rows = measure(compose_cfg([]), repeats=5)
    lines = [
        "# Report: feature sets, clusterers and post-processing on real frames",
        "",
        f"Written by `experiments/report.py` on {date.today()} ({platform.node()}, {os.cpu_count()} cores). "
        "50 real frames sampled with seed 0 from `FOOTBALL_DATA`, scale 8 (240x135) unless said otherwise. "
        "CNN rows stand on EfficientNet-Lite0 ImageNet weights: ResNet-18 has none on this offline machine, "
        "so `features=resnet` falls back (tagged in each MLflow run).",
        "",
        "## Every feature set x clusterer tried", "", *table, "",
        "## The same frames across methods", "", f"![overlays]({overlays})", "",
        "## Inertia and silhouette against k (k-means on Lab + position)", "", f"![k curves]({curves})", "",
        *curve_lines, "",
        "## Why DBSCAN on CNN features marks players as noise", "", *dbscan_noise_evidence(), "",
        VARIANTS_SECTION, "", VARIANTS_NOTE, "", *generality(), "",
        "## Seconds per image per stage (default experiment, scale 8)", "",
        "Median over 5 repeats of the mean over 50 frames; `x decode` is the ratio to decoding the JPEG at "
        "working size (PIL draft), the floor of any run. Same as `make benchmark`.", "", "```",
        format_table(default_rows, "default experiment"), "```", "",
        "## Seconds per image per clusterer (colour + position features, all stages, 10 frames, median of 3)", "",
        *benchmarks(), "",
        "## CNN feature extraction on CPU (480x270 network input, 2 threads, median of 10 frames, no cache)", "",
        *cnn_timing(), "",
        "## The method's three questions", "",
        "**Semantic, instance, panoptic.** Semantic segmentation gives every pixel a class (player, pitch, "
        "crowd): this project's binary player mask is semantic. Instance segmentation separates each object "
        "of a countable class (player 1, player 2, ...); the connected components with centroids are a cheap "
        "instance step, and they fail where players touch (the table's components against GT blobs). Panoptic "
        "segmentation does both at once: every pixel gets a class, and pixels of countable classes also an "
        "instance id (each player its own id, the pitch and the stands one region each).",
        "",
        "**Dice or IoU.** Dice = 2|A∩B| / (|A|+|B|), IoU = |A∩B| / |A∪B|. " + dice_iou_answer(rows)
        + " IoU punishes errors more (a 0.8 Dice is a 0.67 IoU), so it separates good masks better and is the "
        "detection and COCO convention; Dice (the F1 score of pixels) is the medical and training-loss "
        "convention and reads more gently on small objects. Report the one your comparison uses; for small "
        "players prefer pooled scores or IoU, where a few pixels do not swing the mean.",
        "",
        autoencoder_answer(),
        "",
    ]
    write_text_whole(ROOT / "experiments" / "REPORT.md", "\n".join(lines))
    for title, source in ((GENERALITY_SECTION, GENERALITY), (GRAPH_SECTION, GRAPH_METHODS),
                          (SHOT_TYPES_SECTION, SHOT_TYPES), (SPEED_SECTION, SPEED)):
        if source.is_file():
            splice(ROOT / "experiments" / "REPORT.md", title, source.read_text().splitlines()[2:])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
