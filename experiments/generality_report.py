"""Scores every method family on frames unlike the development camera's; writes experiments/GENERALITY.md
and the same table into experiments/REPORT.md.

Usage: ``.venv/bin/python experiments/generality_report.py [--methods NAME,...] [--unet-seeds 0,1,2]`` (34 minutes
on 2 cores with every method on 2026-12-01, most of it DynaSeg and the supervised U-Net's three trainings).

The variants (``src/data/variants.py``) are made from the 50 evaluation frames
(``data.n_images=50``, seed 0), which no method was tuned or trained on: 2x,
3x and 4x zooms anchored at the far touchline, crops whose side edge cuts a player or whose foot cuts one
at the waist,
the frames whose players reach the far touchline, a stand's shadow over the
pitch, a washed-out picture (half the saturation, 0.7 of the contrast) and the
broadcaster's graphics over the picture (a score bug and a name caption), and
4:3 footage between black bars in a 16:9 frame, a score ticker along the
foot of the picture, a logo painted on the pitch,
kits turned 240 degrees
in hue, which makes the light-blue team's fluorescent yellow-green, the
colour of sunlit grass, and close-ups around the frame's largest player, who
covers a tenth of the crop (``closeup``) or half of it (``closeup_half``).
Each unsupervised row is
one experiment; the supervised U-Net is trained on the other 150
development frames (``python -m src.train model=unet_supervised``, scale 8)
once per training seed (``--unet-seeds``, three by default) and applied to
every set: its row gives the mean over the seeds, with the lowest and highest
mean Dice beside it, since one training run can land a hundredth of Dice
either side of another. The region oracle is the ceiling of any rule that
keeps whole regions of the same label maps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from learned_report import train_cfg  # noqa: E402
from report import GENERALITY_SECTION, splice  # noqa: E402

from src.data import FootballDataset  # noqa: E402
from src.data.variants import make_variant  # noqa: E402
from src.metrics import blob_recall, dice, overlap_counts, pooled_scores  # noqa: E402
from src.pipeline import evaluate  # noqa: E402
from src.summary import LOW_DICE  # noqa: E402
from src.compose import build, load_config  # noqa: E402
from src.files import write_text_whole  # noqa: E402

# the 50 evaluation frames are drawn with this seed; every U-Net holds them out, whatever its training seed
SAMPLE_SEED = 0
# set name -> (variant, its options)
VARIANTS = {name: (name, {}) for name in ("zoom2", "zoom3", "zoom4", "edge", "foot", "touchline", "shadow",
                                          "washed", "graphics", "pillarbox", "ticker", "logo")}
# the light-blue team in fluorescent yellow-green, the colour of sunlit grass (the red team turns blue)
VARIANTS["kits_lime"] = ("kits", {"kit_hue_shift": 240.0})
# close-ups around the largest player, as another camera's: at a tenth of the frame, and at half (groups run from
# the frame's top to its foot)
VARIANTS["closeup"] = ("closeup", {})
VARIANTS["closeup_half"] = ("closeup", {"closeup_fraction": 0.5})
# name -> (title in the table, overrides of an unsupervised experiment, or None for the supervised U-Net)
METHODS = {
    "default": ("default", ["experiment=default"]),
    "best": ("best", ["experiment=best"]),
    "enclosed": ("best, enclosure only (players_enclosed)", ["experiment=best", "postprocess=players_enclosed"]),
    "cnn": ("CNN (cnn_dbscan_noise)", ["experiment=cnn_dbscan_noise"]),
    "dynaseg": ("DynaSeg (dynaseg_tuned)", ["experiment=dynaseg_tuned"]),
    "unet": ("supervised U-Net (trained on the development camera)", None),
}


def evaluation_sets(root: str | None, out_dir: Path) -> dict[str, tuple]:
    """``{name: (root, n_images)}``: the 50 evaluation frames and each variant of them, written under ``out_dir``."""
    if root is None:
        raise SystemExit("error: no real frames found; set FOOTBALL_DATA or data.root")
    source = FootballDataset(root, n_images=50, seed=SAMPLE_SEED)
    sets = {"development (50 frames)": (root, 50)}
    for name, (variant, options) in VARIANTS.items():
        sets[name] = (make_variant(source, variant, out_dir / name, **options), None)
    return sets


def score_experiment(root, overrides: list[str], n_images) -> dict:
    cfg = load_config([*overrides, f"data.root={root}", f"data.n_images={'null' if n_images is None else n_images}"])
    stages = {name: build(cfg[name], name) for name in ("data", "features", "clusterer", "postprocess")}
    start = time.perf_counter()
    results, summary = evaluate(stages["data"], stages["features"], stages["clusterer"], stages["postprocess"],
                                silhouette_sample=cfg.silhouette_sample, seed=cfg.seed)
    return {"frames": len(results), "dice": summary["dice_mean"], "iou": summary["iou_mean"],
            "recall": summary["blob_recall_mean"],
            "precision_pooled": summary["precision_pooled"], "recall_pooled": summary["recall_pooled"],
            "oracle": summary["region_oracle_dice_mean"], "below": int(summary["frames_dice_below_0.3"]),
            "seconds": (time.perf_counter() - start) / len(results)}


def unet_config(out_dir: Path, seed: int):
    """The training config of the supervised U-Net with training seed ``seed``, written to ``out_dir``."""
    # data.seed follows seed by default; pinned, so that every seed holds out the same evaluation frames
    return train_cfg(["model=unet_supervised", f"out_dir={out_dir}", f"seed={seed}", f"data.seed={SAMPLE_SEED}"])


def train_unet(out_dir: Path, seed: int):
    from src.models.checkpoint import load_model
    from src.train import run_training

    run_training(unet_config(out_dir, seed))
    return load_model(out_dir, option="generality_report")[0]


def score_unet(model, root, n_images) -> dict:
    from src.training import predict

    # timed from decoding to scores, as score_experiment times evaluate, so the s/frame column compares alike
    start = time.perf_counter()
    # decoded afresh, as the experiments' runs decode theirs (the process's frame cache would serve later seeds)
    frames = FootballDataset(str(root), n_images=n_images, seed=SAMPLE_SEED, scale=8, cache_frames=False).frames()
    masks = predict(model, np.stack([f.image for f in frames]))[:, 0] > 0
    scores = [dice(m, f.mask) for m, f in zip(masks, frames)]
    recalls = [blob_recall(m, f.mask, instances=f.instances) for m, f in zip(masks, frames)]
    pooled = pooled_scores([overlap_counts(m, f.mask) for m, f in zip(masks, frames)])
    seconds = (time.perf_counter() - start) / len(frames)
    return {"frames": len(frames), "dice": float(np.mean(scores)), "recall": float(np.nanmean(recalls)),
            "precision_pooled": pooled["precision_pooled"], "recall_pooled": pooled["recall_pooled"],
            "oracle": float("nan"), "below": int(sum(s < LOW_DICE for s in scores)), "seconds": seconds}


def score_unets(models: list, root, n_images) -> dict:
    """``score_unet`` of every trained model, averaged; ``dice_range`` holds the lowest and highest mean Dice."""
    rows = [score_unet(model, root, n_images) for model in models]
    mean = {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
    mean["frames"] = rows[0]["frames"]
    mean["dice_range"] = (min(row["dice"] for row in rows), max(row["dice"] for row in rows))
    return mean


def number(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.3f}"


def count(value: float) -> str:
    """A count, or a mean count over the U-Net's seeds to one decimal."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def dice_cell(row: dict) -> str:
    """Mean Dice, with the range over the U-Net's training seeds where there are several."""
    low, high = row.get("dice_range", (row["dice"], row["dice"]))
    return f"{row['dice']:.3f}" if low == high else f"{row['dice']:.3f} ({low:.3f}–{high:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    parser.add_argument("--unet-seeds", default="0,1,2", help="comma-separated training seeds of the U-Net")
    args = parser.parse_args()
    chosen = args.methods.split(",")
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise SystemExit(f"error: --methods {unknown[0]!r} is not one of {', '.join(METHODS)}")
    try:
        seeds = [int(seed) for seed in args.unet_seeds.split(",")]
    except ValueError:
        raise SystemExit(f"error: --unet-seeds {args.unet_seeds!r} is not a comma-separated list of integers, "
                         "such as 0,1,2") from None
    cfg = load_config([])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = evaluation_sets(cfg.data.root, Path(tmp))
        unets = [train_unet(Path(tmp) / f"unet{seed}", seed) for seed in seeds] if "unet" in chosen else []
        for name, (root, n_images) in sets.items():
            for method in chosen:
                title, overrides = METHODS[method]
                row = score_unets(unets, root, n_images) if overrides is None else score_experiment(
                    root, overrides, n_images)
                rows.append((name, title, row))
                print(name, title, row, file=sys.stderr, flush=True)
    table = ["| frames | method | n | mean Dice | player recall | pixel precision | pixel recall | region oracle | "
             "frames < 0.3 | s/frame |", "|---|---|---|---|---|---|---|---|---|---|"]
    table += [f"| {name} | {method} | {r['frames']} | {dice_cell(r)} | {r['recall']:.3f} | "
              f"{r['precision_pooled']:.3f} | {r['recall_pooled']:.3f} | {number(r['oracle'])} | "
              f"{count(r['below'])} | {r['seconds']:.3f} |" for name, method, r in rows]
    body = [f"Written by `experiments/generality_report.py` on {date.today()} ({cfg.data.root}, scale 8). "
            "Variants of the 50 evaluation frames (`src/data/variants.py`); player recall is the share of "
            "annotated players whose pixels the mask covers at least half; pixel precision and recall are "
            "pooled over the set's pixels (a mask too big loses precision, one that misses players or "
            "their edges recall); the region oracle keeps the "
            "mostly-player regions of each cluster (the ceiling of any region rule; none for the U-Net)."
            + (f" The U-Net is trained on the other 150 development frames, once per seed "
               f"({', '.join(map(str, seeds))}); its row is the mean over the seeds, with the range of their mean "
               "Dice in brackets." if "unet" in chosen else ""), "", *table]
    if set(chosen) != set(METHODS):
        # a subset would replace the whole table with its own rows
        print("\n".join(body))
        print(f"a subset of the methods ({args.methods}): GENERALITY.md and REPORT.md are left as they are")
        return
    write_text_whole(ROOT / "experiments" / "GENERALITY.md",
        "# Generality: players the pitch does not enclose\n\n" + "\n".join(body) + "\n")
    splice(ROOT / "experiments" / "REPORT.md", GENERALITY_SECTION, body)
    print("\n".join(body))


if __name__ == "__main__":
    main()
