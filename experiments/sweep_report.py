"""Runs the Optuna sweeps on the real frames and writes experiments/SWEEPS.md and its figure.

Usage: ``FOOTBALL_DATA=../shared/football .venv/bin/python experiments/sweep_report.py``
(about 15 minutes on 2 cores; run nothing else meanwhile, the wall times are
part of the report). Studies go to a fresh ``mlruns/sweep_report.db``, their
runs to the project's MLflow store; every number below is read back from them.

``--trials N`` is a quick check of the script: N trials per study, and the
studies, report, figure and exported experiment go to a temporary folder
(printed), leaving the committed ones alone.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src.sweep.export_trial import main as export_trial  # noqa: E402
from src.files import write_text_whole  # noqa: E402

STORE = ROOT / "mlruns" / "sweep_report.db"
STORAGE = f"sqlite:///{STORE}"
REPORT = ROOT / "experiments" / "SWEEPS.md"
FIGURE = ROOT / "experiments" / "figures" / "sweep_objectives.png"
TUNED = "kmeans_tuned"
TUNED_OUT = ROOT / "conf" / "experiment" / f"{TUNED}.yaml"
COMPLETE = optuna.trial.TrialState.COMPLETE


TRIALS: list[str] = []  # "--trials N" for a quick check of the script; the report uses the spaces' own counts


def sweep(search: str, study: str, *overrides: str) -> float:
    """Run one sweep to completion in a fresh process; returns its wall-clock seconds."""
    command = [sys.executable, "-m", "src.run", "-m", f"hparams_search={search}", *TRIALS,
               f"hydra.sweeper.study_name={study}", f"hydra.sweeper.storage={STORAGE}",
               f"hydra.sweep.dir={ROOT / 'multirun' / 'sweep_report' / study}", *overrides]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sweep {study} failed:\n{proc.stderr[-3000:]}")
    print(f"{study}: {seconds:.0f} s", flush=True)
    return seconds


def single_run(*overrides: str) -> float:
    """Mean Dice of one ``src.run`` in a fresh process, as it prints it."""
    proc = subprocess.run([sys.executable, "-m", "src.run", *overrides,
                           f"hydra.run.dir={ROOT / 'outputs' / 'sweep_report'}"],
                          cwd=ROOT, capture_output=True, text=True)
    found = re.search(r"mean Dice (\d\.\d+)", proc.stdout + proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"run {overrides} failed:\n{proc.stderr[-3000:]}")
    return float(found.group(1))


def load(study: str) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=STORAGE)


def metric(trial: optuna.trial.FrozenTrial, name: str) -> float:
    return trial.user_attrs["metrics"][name]


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if t.state == COMPLETE and "metrics" in t.user_attrs]


def rho(xs, ys) -> float:
    return float(spearmanr(xs, ys).statistic)


def objective_rows(trials, name: str, sign: float) -> dict:
    """How well ranking by an unsupervised objective (sign=1 larger is better) agrees with ranking by Dice."""
    scores = [sign * metric(t, name) for t in trials]
    dice = [metric(t, "dice_mean") for t in trials]
    by_objective = sorted(range(len(trials)), key=lambda i: -scores[i])
    by_dice = sorted(range(len(trials)), key=lambda i: -dice[i])
    top = max(len(trials) // 10, 1)
    picked = dice[by_objective[0]]
    return {"rho": rho(scores, dice), "picked_dice": picked, "best_dice": dice[by_dice[0]],
            "picked_rank": 1 + by_dice.index(by_objective[0]), "n": len(trials),
            "top_overlap": len(set(by_objective[:top]) & set(by_dice[:top])) / top, "top": top}


def within_k(trials, name: str, sign: float) -> tuple[float, int]:
    """Median Spearman rho between the objective and Dice among trials that share k (groups of 5 or more)."""
    groups: dict[int, list] = {}
    for t in trials:
        groups.setdefault(t.params["clusterer.n_clusters"], []).append(t)
    values = [rho([sign * metric(t, name) for t in g], [metric(t, "dice_mean") for t in g])
              for g in groups.values() if len(g) >= 5]
    return (statistics.median(values) if values else float("nan")), len(values)


def scatter(trials) -> bytes:
    """The objectives-against-Dice figure as PNG bytes, written with the report once every run has ended."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    dice = [metric(t, "dice_mean") for t in trials]
    for ax, name in zip(axes, ("silhouette_mean", "inertia_mean")):
        ax.scatter([metric(t, name) for t in trials], dice, c=[t.params["clusterer.n_clusters"] for t in trials],
                   cmap="viridis", s=14)
        ax.set_xlabel(name)
        ax.set_ylabel("mean Dice")
    axes[1].set_xscale("log")
    fig.colorbar(axes[1].collections[0], ax=axes, label="k")
    fig.suptitle("kmeans_dice trials: unsupervised objectives against Dice")
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=90)
    plt.close(fig)
    return png.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the sweeps and write experiments/SWEEPS.md")
    parser.add_argument("--trials", type=int, default=None,
                        help="trials per study, for a quick check: everything goes to a temporary folder")
    args = parser.parse_args()
    if args.trials is not None and args.trials < 1:
        parser.error(f"--trials={args.trials} is out of range; give at least 1")
    if not os.environ.get("FOOTBALL_DATA"):
        raise SystemExit("error: FOOTBALL_DATA is not set; point it at the real frames (../shared/football)")
    if args.trials is None:
        write_report()
        return
    TRIALS.append(f"hydra.sweeper.n_trials={args.trials}")
    with tempfile.TemporaryDirectory(prefix="sweep_report_check_") as tmp:
        check_outputs(Path(tmp))
        write_report()
        print(f"quick check: {args.trials} trials per study; outputs were in {tmp} (removed)")


def check_outputs(folder: Path) -> None:
    """Send the studies, report, figure and exported experiment of a quick check to ``folder``."""
    global STORE, STORAGE, REPORT, FIGURE, TUNED_OUT
    STORE, REPORT = folder / "sweep_report.db", folder / "SWEEPS.md"
    STORAGE, FIGURE = f"sqlite:///{STORE}", folder / "figures" / "sweep_objectives.png"
    TUNED_OUT = folder / f"{TUNED}.yaml"


def run_exported(staging: Path) -> tuple[str, float]:
    """Export the Dice study's best trial into ``staging`` and score it with a single run.

    Returns the experiment file's text and the run's mean Dice. The file is
    staged under a name that ``conf/experiment`` does not have, so the run
    reads the new export and not the committed one.
    """
    staged = staging / "conf" / "experiment" / f"{TUNED}_staged.yaml"
    export_trial(["report_kmeans_dice", TUNED, "--storage", STORAGE, "--out", str(staged)])
    return staged.read_text(), single_run("--config-dir", str(staging / "conf"), f"experiment={TUNED}_staged")


def write_report() -> None:
    """Run the sweeps and single runs, then write the figure, the exported experiment and the report (each whole,
    and none of them before every run has ended)."""
    STORE.unlink(missing_ok=True)
    seconds = {
        "dice_2": sweep("kmeans_dice", "report_kmeans_dice", "hydra.sweeper.n_jobs=2"),
        "dice_1": sweep("kmeans_dice", "report_kmeans_dice_serial", "hydra.sweeper.n_jobs=1"),
        "dice_pruned": sweep("kmeans_dice", "report_kmeans_dice_pruned", "hydra.sweeper.n_jobs=2",
                             "+hydra.sweeper.pruner._target_=optuna.pruners.MedianPruner",
                             "+hydra.sweeper.pruner.n_startup_trials=10",
                             "+hydra.sweeper.pruner.n_warmup_steps=10"),
        "silhouette": sweep("kmeans_silhouette", "report_kmeans_silhouette", "hydra.sweeper.n_jobs=2"),
        "inertia": sweep("kmeans_inertia", "report_kmeans_inertia", "hydra.sweeper.n_jobs=2"),
        "pareto": sweep("dice_speed", "report_dice_speed", "hydra.sweeper.n_jobs=2"),
    }
    dice_study = load("report_kmeans_dice")
    with tempfile.TemporaryDirectory(prefix="sweep_report_export_") as staging:
        tuned_text, tuned_single = run_exported(Path(staging))
    default_single = single_run()
    best_single = single_run("experiment=best")

    dice_trials = complete(dice_study)
    figure = scatter(dice_trials)
    rows = {
        ("silhouette", "kmeans_dice trials"): objective_rows(dice_trials, "silhouette_mean", 1),
        ("inertia", "kmeans_dice trials"): objective_rows(dice_trials, "inertia_mean", -1),
        ("silhouette", "kmeans_silhouette study"): objective_rows(complete(load("report_kmeans_silhouette")),
                                                                  "silhouette_mean", 1),
        ("inertia", "kmeans_inertia study (k=12)"): objective_rows(complete(load("report_kmeans_inertia")),
                                                                    "inertia_mean", -1),
    }
    sil_k, sil_groups = within_k(dice_trials, "silhouette_mean", 1)
    inertia_k, inertia_groups = within_k(dice_trials, "inertia_mean", -1)
    pruned = load("report_kmeans_dice_pruned")
    n_pruned = sum(t.state.name == "PRUNED" for t in pruned.trials)
    pareto = load("report_dice_speed")
    front = sorted(pareto.best_trials, key=lambda t: t.values[1])

    lines = [
        "# Optuna sweeps on the real frames",
        "",
        f"Written by `experiments/sweep_report.py` on {date.today()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores): 50 frames of `{os.environ['FOOTBALL_DATA']}` at scale 8, "
        f"studies in `{STORE.relative_to(ROOT) if STORE.is_relative_to(ROOT) else STORE}`, runs in the project's "
        "MLflow store (one parent run per study).",
        "",
        f"## Speed: {len(load('report_kmeans_dice').trials)}-trial k-means sweep",
        "",
        "`hparams_search=kmeans_dice`: k, position weight, field colour radius and thin-structure width, "
        "TPE sampler, objective mean Dice. One sweep each (wall clock, including process start-up):",
        "",
        "| sweep | trials | wall seconds | seconds per trial | best mean Dice |",
        "|---|---|---|---|---|",
    ]
    for key, study_name, label in (("dice_1", "report_kmeans_dice_serial", "n_jobs=1"),
                                   ("dice_2", "report_kmeans_dice", "n_jobs=2"),
                                   ("dice_pruned", "report_kmeans_dice_pruned", "n_jobs=2, MedianPruner")):
        study = load(study_name)
        lines.append(f"| {label} | {len(study.trials)} | {seconds[key]:.0f} | {seconds[key] / len(study.trials):.2f} "
                     f"| {study.best_value:.4f} |")
    lines += [
        "",
        f"Target (issue 17): 100 trials in at most 60 s. The pruned sweep stopped {n_pruned} of {len(pruned.trials)} trials "
        "early (median rule after 10 images, reports every 10 images).",
        "",
        "## Does an unsupervised objective pick what Dice picks?",
        "",
        "Spearman ρ between the objective (signed so larger is better: silhouette, −inertia) and mean Dice "
        f"over a study's trials; the Dice of the trial the objective ranks first; how many of its top "
        "10 % are also in Dice's top 10 %.",
        "",
        "| objective | trials of | n | ρ with Dice | Dice of its pick | rank of its pick by Dice | best Dice | top-10 % overlap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (objective, source), row in rows.items():
        lines.append(f"| {objective} | {source} | {row['n']} | {row['rho']:.2f} | {row['picked_dice']:.4f} | "
                     f"{row['picked_rank']} | {row['best_dice']:.4f} | {row['top_overlap']:.0%} of {row['top']} |")
    lines += [
        "",
        (f"Among kmeans_dice trials that share k (median over {sil_groups} values of k with 5 or more trials): "
         f"ρ(silhouette, Dice) = {sil_k:.2f}, ρ(−inertia, Dice) = {inertia_k:.2f} ({inertia_groups} groups)."
         if sil_groups else "No value of k has 5 or more kmeans_dice trials, so there is no within-k ρ.")
        + " Inertia compares clusterings only at a fixed k and fixed features, "
        "which is why `kmeans_inertia` fixes k=12 and the features and searches only the k-means fit "
        "(restarts, fit sample, seed).",
        "",
        f"![silhouette and inertia against Dice]({FIGURE.relative_to(REPORT.parent)})",
        "",
        "## Multi-objective: Dice against seconds per image",
        "",
        f"`hparams_search=dice_speed` ({len(pareto.trials)} trials over scale, k and fit sample), Pareto front:",
        "",
        "| trial | mean Dice | s/image | data.scale | k | fit sample |",
        "|---|---|---|---|---|---|",
    ]
    for t in front:
        lines.append(f"| {t.number} | {t.values[0]:.4f} | {t.values[1]:.4f} | {t.params['data.scale']} | "
                     f"{t.params['clusterer.n_clusters']} | {t.params['clusterer.fit_sample']} |")
    best = dice_study.best_trial
    lines += [
        "",
        "## The winner as an experiment",
        "",
        f"Trial {best.number} of the n_jobs=2 Dice study (mean Dice {best.value:.4f}) was saved with "
        f"`python -m src.sweep.export_trial report_kmeans_dice {TUNED} --storage {STORAGE.replace(str(ROOT), '.')}` "
        f"as `conf/experiment/{TUNED}.yaml`: "
        + ", ".join(f"`{k}={v:.4g}`" if isinstance(v, float) else f"`{k}={v}`" for k, v in best.params.items())
        + ".",
        "",
        "| single run | mean Dice |",
        "|---|---|",
        f"| `python -m src.run` (k-means family default) | {default_single:.4f} |",
        f"| `python -m src.run experiment=best` | {best_single:.4f} |",
        f"| `python -m src.run experiment={TUNED}` | {tuned_single:.4f} |",
        "",
        f"The single run repeats the trial's value to 3 decimals: {abs(tuned_single - best.value) < 5e-4}.",
        "",
        "Other sweep times: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items() if not k.startswith("dice")) + ".",
        "",
    ]
    FIGURE.parent.mkdir(exist_ok=True)
    write_text_whole(FIGURE, figure)
    TUNED_OUT.parent.mkdir(parents=True, exist_ok=True)
    write_text_whole(TUNED_OUT, tuned_text)
    write_text_whole(REPORT, "\n".join(lines))
    print(f"wrote {REPORT}, {FIGURE.name} and {TUNED_OUT.name}")


if __name__ == "__main__":
    main()
