"""Scores rules for choosing player regions on frames unlike the development camera's; writes experiments/GENERALITY.md.

Usage: ``.venv/bin/python experiments/generality_report.py`` (about 3 minutes on 2 cores).
The variants (``src/data/variants.py``) are made from the 50 evaluation frames
(``data.n_images=50``, seed 0): 2x, 3x and 4x zooms anchored at the far
touchline, crops whose edge cuts a player, and the frames whose players reach
the far touchline. Each row is ``experiment=best`` with one post-processing
chain; the region oracle is the ceiling of any rule that keeps whole regions
of the same label maps.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.data import FootballDataset  # noqa: E402
from src.data.variants import make_variant  # noqa: E402
from src.pipeline import evaluate  # noqa: E402
from src.run import build, load_config  # noqa: E402

VARIANTS = ("zoom2", "zoom3", "zoom4", "edge", "touchline")
CHAINS = {"players (enclosed by the pitch)": "players", "players_standing (standing on the pitch)": "players_standing"}


def score(root, chain: str, n_images) -> dict:
    cfg = load_config(["experiment=best", f"postprocess={chain}", f"data.root={root}",
                       f"data.n_images={'null' if n_images is None else n_images}"])
    stages = {name: build(cfg[name], name) for name in ("data", "features", "clusterer", "postprocess")}
    start = time.perf_counter()
    results, summary = evaluate(stages["data"], stages["features"], stages["clusterer"], stages["postprocess"],
                                silhouette_sample=cfg.silhouette_sample, seed=cfg.seed)
    dice = np.array([r.metrics["dice"] for r in results])
    return {"frames": len(results), "dice": summary["dice_mean"], "recall": summary["blob_recall_mean"],
            "oracle": summary["region_oracle_dice_mean"], "below": int((dice < 0.3).sum()),
            "seconds": (time.perf_counter() - start) / len(results)}


def main() -> None:
    cfg = load_config([])
    if cfg.data.root is None:
        raise SystemExit("error: no real frames found; set FOOTBALL_DATA or data.root")
    source = FootballDataset(cfg.data.root, n_images=50, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"development (50 frames)": (cfg.data.root, 50)}
        for variant in VARIANTS:
            sets[variant] = (make_variant(source, variant, Path(tmp) / variant), None)
        for name, (root, n_images) in sets.items():
            for label, chain in CHAINS.items():
                rows.append((name, label, score(root, chain, n_images)))
                print(name, label, rows[-1][2], file=sys.stderr)
    lines = ["| frames | chain | n | mean Dice | blob recall | region oracle | frames < 0.3 | s/frame |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {name} | {label} | {r['frames']} | {r['dice']:.3f} | {r['recall']:.3f} | {r['oracle']:.3f} | "
              f"{r['below']} | {r['seconds']:.3f} |" for name, label, r in rows]
    text = (f"# Generality: players the pitch does not enclose\n\nWritten by `experiments/generality_report.py` on "
            f"{date.today()} ({cfg.data.root}, scale 8). `experiment=best` with each post-processing chain; blob "
            "recall is the share of annotated player blobs covered at least half; the region oracle keeps the "
            "mostly-player regions of each cluster (the ceiling of any region rule).\n\n" + "\n".join(lines) + "\n")
    (ROOT / "experiments" / "GENERALITY.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
