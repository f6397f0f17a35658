"""Measures the lecture's graph methods, normalized cuts and GrabCut, on the development frames and on the
generality variants; writes experiments/GRAPH_METHODS.md and the same section into experiments/REPORT.md.

Usage: ``.venv/bin/python experiments/graph_report.py`` (about 6 minutes on 2 cores).

GrabCut (``postprocess=players_grabcut``) is measured as a last step added to
the chains of ``default`` and ``best``; it would join ``best`` only if it won on
the development frames and on the variants. ``clusterer=ncut`` replaces the
clusterer of the root config (Lab colour and position features, the players chain).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from generality_report import evaluation_sets, score_experiment  # noqa: E402
from report import GRAPH_SECTION, splice  # noqa: E402

from src.compose import load_config  # noqa: E402
from src.files import write_text_whole  # noqa: E402

METHODS = {
    "default": ["experiment=default"],
    "default + GrabCut": ["experiment=default", "postprocess=players_grabcut"],
    "best": ["experiment=best"],
    "best + GrabCut": ["experiment=best", "postprocess=players_grabcut"],
    "ncut (normalized cuts of SLIC superpixels)": ["clusterer=ncut"],
}


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    load_before = os.getloadavg()[0]
    cfg = load_config([])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = evaluation_sets(cfg.data.root, Path(tmp))
        for name, (root, n_images) in sets.items():
            for method, overrides in METHODS.items():
                row = score_experiment(root, overrides, n_images)
                rows.append((name, method, row))
                print(name, method, row, file=sys.stderr, flush=True)
    table = ["| frames | method | n | mean Dice | mean IoU | player recall | frames < 0.3 | s/frame |",
             "|---|---|---|---|---|---|---|---|"]
    table += [f"| {name} | {method} | {r['frames']} | {r['dice']:.3f} | {r['iou']:.3f} | {r['recall']:.3f} | "
              f"{r['below']} | {r['seconds']:.3f} |" for name, method, r in rows]
    dice = {(name, method): r["dice"] for name, method, r in rows}
    changes = []
    for base in ("default", "best"):
        change = {name: dice[name, f"{base} + GrabCut"] - dice[name, base] for name in sets}
        wins = [name for name, delta in change.items() if delta > 0]
        changes.append(f"GrabCut after `{base}` changes mean Dice by "
                       + ", ".join(f"{delta:+.3f} ({name})" for name, delta in change.items())
                       + (f"; it wins on {', '.join(wins)}." if wins else "; it wins nowhere."))
    verdict = ("It would join `best` only by winning on the development frames and on every variant; "
               + ("it does, so it belongs in `best`." if len(wins) == len(sets) else "it does not, so `best` "
                  "keeps its chain."))
    body = [f"Written by `experiments/graph_report.py` on {date.today()} ({cfg.data.root}, scale 8). Sets as in "
            "the generality section: the 50 evaluation frames and their variants. s/frame is the whole "
            f"pipeline on one core, decoding included (1-minute load average {load_before:.1f} before and "
            f"{os.getloadavg()[0]:.1f} after: above 1, other work shared the 2 cores).", "", *table, "", " ".join(changes) + " " + verdict]
    write_text_whole(ROOT / "experiments" / "GRAPH_METHODS.md",
        "# " + GRAPH_SECTION.removeprefix("## ") + "\n\n" + "\n".join(body) + "\n")
    splice(ROOT / "experiments" / "REPORT.md", GRAPH_SECTION, body)
    print("\n".join(body))


if __name__ == "__main__":
    main()
