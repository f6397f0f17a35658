"""Shot types: k-means of whole frames on raw pixels, on their PCA and on pooled autoencoder codes; writes
experiments/SHOT_TYPES.md.

Usage: ``FOOTBALL_DATA=../shared/football .venv/bin/python experiments/shot_types.py [--seed 0] [--repeats 5]``

The course's third question: do autoencoder codes make clustering many images
cheaper and better? The 200 development frames, decoded at the lab's working
scale 8 (240x135), are clustered into k = 3 "shot types" by k-means on

(a) the raw pixels, flattened (RGB in [0, 1], d = 240 * 135 * 3),
(b) a PCA of (a) (``--pca`` components),
(c) the code map of the project's autoencoder (``python -m src.train
    model=autoencoder``; 8 channels at stride 8), pooled per channel into its
    mean and standard deviation over space, then standardised.

There is no shot-type ground truth, so each clustering is compared, by the
adjusted Rand index (0 = chance, 1 = the same partition), with labellings the
script derives from the player annotations: terciles of the share of frame
pixels in the player mask (close-ups have more), and terciles of the number
of annotated player blobs. ``build s`` is the time from the decoded uint8
frames to the matrix k-means gets (pixel matrix; + PCA; or encoder + pooling),
``k-means s`` the fit itself; both are medians over ``--repeats`` seeds, and the
ARIs are mean ± std over the same seeds. The autoencoder is trained on the 150
frames outside the lab's 50-frame evaluation sample, so ARIs are also given on
those 50 held-out frames (the partition of all 200, restricted to them).

Every random choice (PCA's randomised solver, k-means' initialisations, the
chance baseline; and the autoencoder's training, when the script has to train
it) comes from ``--seed``. If the checkpoint is missing the script trains it
first with ``src.train`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "experiments"))
from report import SHOT_TYPES, SHOT_TYPES_SECTION, refresh_autoencoder_answer, splice  # noqa: E402

from src.frame import Frame  # noqa: E402

REPORT = ROOT / "experiments" / "REPORT.md"
CHECKPOINT = ROOT / "models" / "autoencoder_reconstruction"
RAW, PCA_ROW, CODE = "raw pixels", "PCA of raw pixels", "autoencoder code, pooled (mean + std per channel)"
LABELLINGS = ("player coverage", "player count")


# ---------------------------------------------------------------- labellings derived from the ground truth

def quantile_bins(values, k: int) -> np.ndarray:
    """Cut ``values`` at their 1/k, 2/k, ... quantiles: terciles for k = 3. Returns labels 0..k-1."""
    values = np.asarray(values, dtype=float)
    cuts = np.quantile(values, np.arange(1, k) / k)
    return np.digitize(values, cuts)


def labellings(frames: list[Frame], k: int) -> dict[str, np.ndarray]:
    """Reference partitions of the frames: quantile bins of player-mask coverage and of the number of players."""
    coverage = [float(np.mean(f.mask)) for f in frames]
    count = [f.n_instances for f in frames]
    return {"player coverage": quantile_bins(coverage, k), "player count": quantile_bins(count, k)}


def cut_points(frames: list[Frame], k: int) -> dict[str, np.ndarray]:
    coverage = np.array([float(np.mean(f.mask)) for f in frames])
    count = np.array([f.n_instances for f in frames], dtype=float)
    q = np.arange(1, k) / k
    return {"player coverage": np.quantile(coverage, q), "player count": np.quantile(count, q)}


# ---------------------------------------------------------------- representations

def pixel_matrix(frames: list[Frame]) -> np.ndarray:
    """(n, H * W * 3) float32 in [0, 1]: each frame's working-size RGB pixels, flattened."""
    return np.stack([f.image for f in frames]).reshape(len(frames), -1).astype(np.float32) / np.float32(255)


def code_maps(model, frames: list[Frame], *, batch_size: int = 16, threads: int = 2) -> np.ndarray:
    """The autoencoder's code of each frame, (n, C, h, w), running the encoder only (no decoder).

    Equal to ``model.feature_maps(x)["code"]`` (tests/test_shot_types.py checks it).
    """
    import torch

    from src.models.blocks import images_to_tensor, pad_to
    from src.torch_threads import torch_threads

    out = []
    with torch_threads(threads), torch.inference_mode():
        for start in range(0, len(frames), batch_size):
            x = pad_to(images_to_tensor(np.stack([f.image for f in frames[start:start + batch_size]])),
                       model.multiple)
            for level in model.encoder:
                x = level(x)
            out.append(model.code(x).numpy())
    return np.concatenate(out)


def pooled_codes(codes: np.ndarray) -> np.ndarray:
    """(n, C, h, w) code maps -> (n, 2C): per channel the mean and the standard deviation over space."""
    return np.concatenate([codes.mean(axis=(2, 3)), codes.std(axis=(2, 3))], axis=1)


def standardise(x: np.ndarray) -> np.ndarray:
    """Each column to mean 0 and standard deviation 1 (constant columns to 0)."""
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1)


# ---------------------------------------------------------------- the measurement

@dataclass
class Row:
    name: str
    d: int | None = None
    build_seconds: list[float] = field(default_factory=list)
    kmeans_seconds: list[float] = field(default_factory=list)
    ari: dict[str, list[float]] = field(default_factory=dict)
    ari_held_out: dict[str, list[float]] = field(default_factory=dict)
    note: str = ""

    @property
    def ran(self) -> bool:
        return self.d is not None


@dataclass
class Results:
    rows: list[Row]
    k: int
    seeds: list[int]
    n_frames: int
    n_held_out: int
    pca_components: int
    n_init: int
    # mean and std of the ARI of random balanced partitions, per labelling (all frames; held-out frames)
    chance: dict[str, tuple[float, float]]
    chance_held_out: dict[str, tuple[float, float]] = field(default_factory=dict)


def measure(frames: list[Frame], *, k: int = 3, seeds=(0, 1, 2, 3, 4), model=None, pca_components: int = 32,
            n_init: int = 10, threads: int = 2, held_out=None, chance_draws: int = 1000) -> Results:
    """Cluster ``frames`` with k-means on the three representations, once per seed, and score each partition.

    Parameters
    ----------
    frames : list of Frame
        With ground-truth masks (the labellings come from them).
    k : int
        Clusters, and quantile bins of each labelling.
    seeds : sequence of int
        One repetition per seed: PCA's and k-means' ``random_state``.
    model : ConvAutoencoder or None
        None leaves the autoencoder row empty (``note`` says so).
    pca_components : int
        Capped at the number of frames.
    held_out : sequence of bool, optional
        Frames the autoencoder did not see; ARIs are also computed on them alone.
    chance_draws : int
        Random balanced partitions scored against each labelling, for the chance spread of ARI.
    """
    seeds = [int(s) for s in seeds]
    refs = labellings(frames, k)
    held = None if held_out is None else np.asarray(held_out, dtype=bool)
    components = min(pca_components, len(frames))

    def pca(seed):
        return PCA(n_components=components, random_state=seed).fit_transform(pixel_matrix(frames))

    def codes(seed):
        return standardise(pooled_codes(code_maps(model, frames, threads=threads)))

    builders = [(RAW, lambda seed: pixel_matrix(frames)), (f"{PCA_ROW} ({components} components)", pca),
                (CODE, codes if model is not None else None)]
    rows = []
    with threadpool_limits(threads):
        for name, build in builders:
            row = Row(name, ari={n: [] for n in refs}, ari_held_out={n: [] for n in refs})
            rows.append(row)
            if build is None:
                row.note = "no autoencoder"
                continue
            for seed in seeds:
                start = time.perf_counter()
                x = build(seed)
                row.build_seconds.append(time.perf_counter() - start)
                row.d = int(x.shape[1])
                start = time.perf_counter()
                labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(x)
                row.kmeans_seconds.append(time.perf_counter() - start)
                for ref_name, ref in refs.items():
                    row.ari[ref_name].append(float(adjusted_rand_score(ref, labels)))
                    if held is not None and held.any():
                        row.ari_held_out[ref_name].append(float(adjusted_rand_score(ref[held], labels[held])))
    rng = np.random.default_rng(seeds[0])
    chance, chance_held_out = {}, {}
    for ref_name, ref in refs.items():
        chance[ref_name] = _chance(ref, k, chance_draws, rng)
        if held is not None and held.any():
            chance_held_out[ref_name] = _chance(ref[held], k, chance_draws, rng)
    return Results(rows, k, seeds, len(frames), int(held.sum()) if held is not None else 0, components, n_init,
                   chance, chance_held_out)


def _chance(ref: np.ndarray, k: int, draws: int, rng: np.random.Generator) -> tuple[float, float]:
    """Mean and std of the ARI of random balanced k-partitions against ``ref``."""
    scores = [adjusted_rand_score(ref, rng.permutation(np.arange(len(ref)) % k)) for _ in range(draws)]
    return float(np.mean(scores)) + 0.0, float(np.std(scores))


# ---------------------------------------------------------------- markdown

def _pm(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if values else "–"


def _seconds(values: list[float]) -> str:
    return f"{np.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def table(results: Results) -> list[str]:
    """The markdown table: one row per representation."""
    held = results.n_held_out > 0
    head = ["representation", "d", "build s: median (min–max)", "k-means s: median (min–max)",
            *(f"ARI {n} (all {results.n_frames})" for n in LABELLINGS)]
    if held:
        head += [f"ARI {n} ({results.n_held_out} held-out)" for n in LABELLINGS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in results.rows:
        if not row.ran:
            lines.append(f"| {row.name} | not run ({row.note}) |" + " – |" * (len(head) - 2))
            continue
        cells = [row.name, str(row.d), _seconds(row.build_seconds), _seconds(row.kmeans_seconds),
                 *(_pm(row.ari[n]) for n in LABELLINGS)]
        if held:
            cells += [_pm(row.ari_held_out[n]) for n in LABELLINGS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _num(x: float) -> str:
    return f"{x + 0.0:.3f}".replace("-0.000", "0.000")


def _best(ran: list[Row], ref: str, chance: tuple[float, float], held_out: bool) -> str:
    """One sentence: which row agrees best with ``ref`` and whether its lead exceeds 3 chance-spreads."""
    means = {r.name: float(np.mean((r.ari_held_out if held_out else r.ari)[ref])) for r in ran}
    best = max(means, key=means.get)
    runner = max((n for n in means if n != best), key=means.get, default=None)
    lead = means[best] - means[runner] if runner else float("nan")
    spread = chance[1]
    verdict = ("more than" if lead > 3 * spread else "less than") + f" 3 chance-spreads (3 x {_num(spread)})"
    return (f"best is **{best}** (ARI {_num(means[best])}), ahead of {runner} by {_num(lead)}, {verdict}; "
            f"random balanced partitions score {_num(chance[0])} ± {_num(spread)}")


def answer(results: Results, training_seconds: float | None = None) -> str:
    """A short answer to "are autoencoder codes cheaper and better for clustering many images?", from the numbers."""
    ran = [r for r in results.rows if r.ran]
    total = {r.name: float(np.median(r.build_seconds) + np.median(r.kmeans_seconds)) for r in ran}
    kmeans = {r.name: float(np.median(r.kmeans_seconds)) for r in ran}
    fastest = min(total, key=total.get)
    text = [f"**Cost.** End to end (build + k-means, medians) the fastest is **{fastest}** ({total[fastest]:.3f} s "
            f"for {results.n_frames} frames; " + ", ".join(f"{n} {total[n]:.3f} s" for n in total if n != fastest)
            + ")."]
    raw = next(r for r in ran if r.name == RAW)
    code = next((r for r in ran if r.name == CODE), None)
    if code is not None:
        ratio = kmeans[RAW] / kmeans[CODE] if kmeans[CODE] > 0 else float("inf")
        text.append(f"k-means itself on the d = {code.d} pooled codes takes {kmeans[CODE]:.3f} s against "
                    f"{kmeans[RAW]:.3f} s on the d = {raw.d} raw pixels ({ratio:.0f}x less), but encoding the "
                    f"frames costs {np.median(code.build_seconds):.3f} s"
                    + (f", and training the autoencoder once cost {training_seconds:.0f} s" if training_seconds
                       else "") + ".")
    text.append("**Agreement.**")
    for ref in LABELLINGS:
        sentence = f"Against the {ref} bins, on all {results.n_frames} frames the " + _best(
            ran, ref, results.chance[ref], held_out=False)
        if ref in results.chance_held_out:
            sentence += f"; on the {results.n_held_out} held-out frames the " + _best(
                ran, ref, results.chance_held_out[ref], held_out=True)
        text.append(sentence + ".")
    if code is not None:
        others = [r for r in ran if r.name != CODE]
        gains = {ref: float(np.mean(code.ari[ref])) - max(float(np.mean(r.ari[ref])) for r in others)
                 for ref in LABELLINGS}
        better = [ref for ref, g in gains.items() if g > 3 * results.chance[ref][1]]
        worse = [ref for ref, g in gains.items() if g < -3 * results.chance[ref][1]]
        cheaper_than = [r.name for r in others if total[CODE] < total[r.name]]
        dearer_than = [r.name for r in others if total[CODE] >= total[r.name]]
        agreement = " and ".join([*(f"better with {ref}" for ref in better), *(f"worse with {ref}" for ref in worse)])
        text.append(
            "**Answer.** The codes make the k-means step "
            + ("cheaper" if kmeans[CODE] < kmeans[RAW] else "no cheaper") + " than raw pixels; end to end, encoding "
            "included, they are "
            + (f"cheaper than {' and '.join(cheaper_than)}" if cheaper_than else "")
            + (" but " if cheaper_than and dearer_than else "")
            + (f"dearer than {' and '.join(dearer_than)}" if dearer_than else "")
            + ". On all frames their partition agrees "
            + (agreement or "no better and no worse with either labelling")
            + " than the best of the other two (a difference counts beyond 3 chance-spreads).")
    top = max(float(np.mean(r.ari[ref])) for r in ran for ref in LABELLINGS)
    if top < 0.2:
        text.append(f"No representation recovers either labelling well (best ARI {_num(top)} on all frames): the "
                    "groups k-means finds in these frames are not mainly player coverage or player count.")
    return " ".join(text)


def section_text(results: Results, *, command: str, data: str, training: str = "",
                 training_seconds: float | None = None, cuts: dict | None = None, decode_seconds: float | None = None,
                 today: str | None = None, load: tuple[float, float] | None = None, threads: int = 2) -> list[str]:
    """The body of the section (no ``## `` headings inside, so ``report.splice`` keeps it whole)."""
    cut_text = ""
    if cuts:
        cut_text = (" Cut points: player coverage at " + ", ".join(f"{100 * c:.2f}%" for c in cuts["player coverage"])
                    + " of the frame; player count at " + ", ".join(f"{c:g}" for c in cuts["player count"])
                    + " blobs (ties go to the upper bin).")
    machine = f"{platform.node()}, {os.cpu_count()} cores, {_cpu_name()}, CPU"
    if load is not None:
        machine += (f"; 1-minute load average {load[0]:.1f} at the start and {load[1]:.1f} at the end, so the "
                    "seconds include contention from other processes")
    return [
        (f"Written by `experiments/shot_types.py` on {today or date.today()} ({machine}). Reproduce with "
         f"`{command}`."),
        "",
        f"{results.n_frames} development frames of `{data}` at scale 8 (240x135), decoded once"
        + (f" ({decode_seconds:.1f} s, not counted below)" if decode_seconds is not None else "")
        + f", clustered by k-means (k = {results.k}, {results.n_init} initialisations, seeds "
        f"{', '.join(map(str, results.seeds))}) on (a) the flattened raw pixels, (b) a PCA of them "
        f"({results.pca_components} components, randomised solver, same seed) and (c) the autoencoder's code "
        "(8 channels at stride 8) pooled per channel into mean and std over space, then standardised. "
        "ARI is the adjusted Rand index against quantile bins of ground-truth quantities (terciles for k = 3) of "
        "the share of frame pixels in the player mask and of the number of player blobs; 0 is chance, 1 the same "
        "partition." + cut_text + " Build s: decoded frames to the k-means input; seconds are medians and ARIs "
        f"mean ± std over the {len(results.seeds)} seeds; threads capped at {threads}." + (" " + training if training else ""),
        "",
        *table(results),
        "",
        answer(results, training_seconds),
    ]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ---------------------------------------------------------------- the run

def ensure_autoencoder(checkpoint: Path, data_root: str, seed: int) -> float | None:
    """Train the project's autoencoder into ``checkpoint`` with ``src.train`` unless it is there; returns seconds."""
    if (checkpoint / "model.json").is_file() and (checkpoint / "weights.pt").is_file():
        return None
    from hydra import compose, initialize_config_dir

    import src.run  # noqa: F401  registers the config resolvers
    from src.train import run_training

    print(f"no autoencoder at {checkpoint}; training it with src.train (about 3 minutes on 2 cores)", flush=True)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["model=autoencoder", f"data.root={data_root}",
                                                      f"seed={seed}", f"out_dir={checkpoint}",
                                                      "data.cache_frames=false"])
    scores, _ = run_training(cfg)
    return float(scores["train_seconds"])


def mlflow_training_seconds(run_id: str | None) -> float | None:
    """``train_seconds`` of the checkpoint's MLflow training run, when the store has it."""
    if not run_id:
        return None
    try:
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlruns' / 'mlflow.db'}"
        return float(MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics["train_seconds"])
    except Exception:  # noqa: BLE001  the number is a remark, not needed for the measurement
        return None


def main(argv: list[str] | None = None) -> Results:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FOOTBALL_DATA") or str(ROOT.parent / "shared" / "football"),
                        help="dataset folder (default: FOOTBALL_DATA, else ../shared/football)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--repeats", type=int, default=5, help="k-means runs, seeds seed..seed+repeats-1")
    parser.add_argument("--k", type=int, default=3, help="clusters (and quantile bins of the labellings)")
    parser.add_argument("--pca", type=int, default=32, help="PCA components")
    parser.add_argument("--n-init", type=int, default=10, help="k-means initialisations per fit")
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS/OpenMP threads")
    parser.add_argument("--checkpoint", default=str(CHECKPOINT), help="autoencoder folder (trained if missing)")
    parser.add_argument("--out", default=str(SHOT_TYPES), help="markdown file to write")
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        raise SystemExit(f"error: --data {args.data!r} is not a folder; set FOOTBALL_DATA to the real frames")

    load_start = os.getloadavg()[0]
    import torch

    from src.data import FootballDataset
    from src.models.checkpoint import load_model

    torch.set_num_threads(args.threads)
    checkpoint = Path(args.checkpoint)
    training_seconds = ensure_autoencoder(checkpoint, args.data, args.seed)
    model, description = load_model(checkpoint, option="--checkpoint", expected="autoencoder")
    training_seconds = training_seconds or mlflow_training_seconds(description.get("mlflow_run_id"))

    start = time.perf_counter()
    dataset = FootballDataset(args.data, n_images=None, scale=8, seed=args.seed, cache_frames=False)
    frames = dataset.frames()
    decode_seconds = time.perf_counter() - start
    if dataset.source != "football":
        raise SystemExit("error: no real frames")
    train_ids = set(description.get("train_image_ids") or [])
    held_out = [f.image_id not in train_ids for f in frames] if train_ids else None
    if description.get("scale") not in (None, 8):
        print(f"warning: the autoencoder was trained at scale {description['scale']}, frames here are at 8")

    results = measure(frames, k=args.k, seeds=range(args.seed, args.seed + args.repeats), model=model,
                      pca_components=args.pca, n_init=args.n_init, threads=args.threads, held_out=held_out)
    n_train = len(train_ids & {f.image_id for f in frames})
    training = (f"The autoencoder (`{checkpoint.relative_to(ROOT) if checkpoint.is_relative_to(ROOT) else checkpoint}`"
                f", MLflow run `{str(description.get('mlflow_run_id', 'unknown'))[:8]}`) was trained on the "
                f"{n_train} frames outside the lab's {results.n_held_out}-frame evaluation sample; the held-out "
                "columns restrict each 200-frame partition (and the labelling) to those frames it never saw. "
                "PCA is fitted on all frames (it needs no labels).") if train_ids else \
        "The checkpoint lists no training frames, so no held-out columns."
    options = [f"--seed {args.seed}", f"--repeats {args.repeats}", f"--k {args.k}", f"--pca {args.pca}",
               f"--n-init {args.n_init}", f"--threads {args.threads}"]
    command = f"FOOTBALL_DATA={shlex.quote(args.data)} .venv/bin/python experiments/shot_types.py " + " ".join(options)
    body = section_text(results, command=command, data=args.data, training=training, threads=args.threads,
                        training_seconds=training_seconds, cuts=cut_points(frames, args.k),
                        decode_seconds=decode_seconds, load=(load_start, os.getloadavg()[0]))
    text = "\n".join(["# " + SHOT_TYPES_SECTION.removeprefix("## "), "", *body, ""])
    Path(args.out).write_text(text)
    if Path(args.out).resolve() == SHOT_TYPES.resolve():
        splice(REPORT, SHOT_TYPES_SECTION, body)
        refresh_autoencoder_answer(REPORT)
    print(text)
    return results


if __name__ == "__main__":
    main()
