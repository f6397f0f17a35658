"""Speed of the lab on this machine: stages against the decode floor, frames in parallel, DynaSeg against the
reference loop, a 100-trial sweep, and peak memory. Writes experiments/SPEED.md and its section of REPORT.md.

Usage::

    FOOTBALL_DATA=../shared/football .venv/bin/python experiments/speed_report.py [--video FILE] [--skip NAME ...]

Every figure is measured by this run (medians over repeats, alternating the
settings compared, since these machines are noisy). ``--video`` names a 1080p
clip for the video rows; without it one is made from the real frames with
``python -m src.clip``. ``--skip`` leaves out sections by name: stages,
parallel, video, dynaseg, sweep, memory; a skipped section keeps what the
SPEED.md on disk has for it. Runs and sweeps go to a temporary MLflow store,
never to the project's ``mlruns/``. This machine has no GPU: ``--gpu FILE``
adds the section that ``experiments/gpu_speed.py --out FILE`` wrote on a GPU
machine (a later run without it keeps that section).
"""

from __future__ import annotations

import argparse
import multiprocessing
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from omegaconf import OmegaConf  # noqa: E402

from src.benchmark import format_table, measure, measure_run, run_once, uncached  # noqa: E402
from src.compose import build_stages, load_config  # noqa: E402
from src.pipeline import evaluate  # noqa: E402

from experiments.gpu_speed import TITLE as GPU_TITLE  # noqa: E402
from experiments.report import SPEED, SPEED_SECTION, splice  # noqa: E402

REPORT = ROOT / "experiments" / "REPORT.md"
# section name -> its heading in SPEED.md
TITLES = {"stages": "Stages of the default experiment", "parallel": "Frames in parallel: images",
          "video": "Frames in parallel: video", "dynaseg": "DynaSeg against the reference loop (CPU)",
          "sweep": "A 100-trial sweep", "memory": "Peak memory"}
SECTIONS = tuple(TITLES)


def stage_rows() -> list[str]:
    rows = measure(load_config([]), repeats=5)
    medians = dict((name, median) for name, median, _ in rows)
    floor, total = rows[0][1], medians["total"]
    rest = total - medians["postprocess"]
    return [f"### {TITLES['stages']}", "",
            "`make benchmark`: median over 5 repeats of the mean over the 50 frames, one worker, MLflow not "
            "timed; `x decode` is the ratio to decoding the JPEG at working size (PIL draft), the floor of any "
            "run. `load` is that decoding plus the ground truth's masks. The indented rows are the steps of the "
            "post-processing chain, timed on a second pass over each repeat's label maps.", "", "```",
            format_table(rows, "default experiment"), "```", "",
            f"All stages: **{total:.4f} s/frame, {total / floor:.2f}x the decode floor**. All but "
            f"post-processing: {rest:.4f} s/frame, {rest / floor:.2f}x.", ""]


def parallel_rows(repeats: int = 5) -> list[str]:
    """Runs as ``python -m src.run`` makes them (decoding, stages, outputs written), 1 and 2 workers alternately,
    frames decoded anew each time: on the 50 frames and on all of them; with all of them, each repeat also
    measures the machine's ceiling (``ceiling_ratio``), so that both see the same load."""
    lines = [f"### {TITLES['parallel']}", "",
             f"The default experiment as `python -m src.run` runs it (decoding, the stages, `predictions/` written "
             f"to a temporary folder; MLflow left out), wall clock, median of {repeats} alternating runs in one "
             "process. `workers` processes decode, score and make the outputs of frames; the numbers are those of "
             "one worker. Each run forks its workers anew, and a worker's first frame costs about twice a later one "
             "(its numpy, scipy and OpenCV BLAS threads are started anew and spin before they sleep; "
             "`OPENBLAS_THREAD_TIMEOUT` keeps that short), so the speed-up grows with the number of frames.", "",
             "| frames | workers | s/frame | frames/s | speed-up | per-frame Dice as one worker |",
             "|---|---|---|---|---|---|"]
    ceilings = []
    for n_images in ("50", "null"):
        seconds: dict[int, list[float]] = {1: [], 2: []}
        dice: dict[int, list[float]] = {}
        for _ in range(repeats):
            for workers in (1, 2):
                cfg = uncached(load_config([f"data.n_images={n_images}", f"workers={workers}"]))
                per_frame, _, metrics, _ = run_once(build_stages(cfg), cfg)
                seconds[workers].append(per_frame)
                dice[workers] = [m["dice"] for m in metrics]
            if n_images == "null":
                ceilings.append(ceiling_ratio(n_images))
        one, two = (statistics.median(seconds[w]) for w in (1, 2))
        n = len(dice[1])
        lines += [f"| {n} | 1 | {one:.4f} | {1 / one:.1f} | 1.00x | |",
                  f"| {n} | 2 | {two:.4f} | {1 / two:.1f} | **{one / two:.2f}x** | "
                  f"{'identical' if dice[1] == dice[2] else 'DIFFERENT'} |"]
    ceiling = statistics.median(ceilings)
    if ceiling < 1.9:
        why = ("Both cores busy slow each other's work (shared caches, virtual CPUs), so no way of splitting "
               "frames can reach 2x here.")
    else:
        why = ("The cores hardly slow each other's work at this hour, so what two workers miss of it is the cost "
               "of splitting one run: forking the workers (their first frames), sending results to the main "
               "process, and the ends of the run, where one worker waits for the other's last frame.")
    return [*lines, "", f"The machine's own ceiling: two independent one-worker runs of all {n} frames at the same "
            f"time (forked processes that share nothing) give **{ceiling:.2f}x** the throughput of one run alone "
            f"(median of {repeats}, each measured right after that repeat's runs above, "
            f"{min(ceilings):.2f}-{max(ceilings):.2f}); two workers reached {one / two / ceiling:.0%} of it. {why}",
            ""]


def _one_worker_seconds(n_images: str, results) -> None:
    cfg = uncached(load_config([f"data.n_images={n_images}", "workers=1"]))
    results.put(run_once(build_stages(cfg), cfg)[0])


def ceiling_ratio(n_images: str) -> float:
    """2 x (s/frame of a one-worker run alone) / (s/frame of two such runs at once), each run in a forked process."""
    context = multiprocessing.get_context("fork")
    seconds = []
    for copies in (1, 2):
        results = context.Queue()
        processes = [context.Process(target=_one_worker_seconds, args=(n_images, results)) for _ in range(copies)]
        for process in processes:
            process.start()
        seconds.append([results.get() for _ in processes])
        for process in processes:
            process.join()
    return 2 * seconds[0][0] / statistics.mean(seconds[1])


def video_rows(video: Path) -> list[str]:
    lines = [f"### {TITLES['video']}", "",
             f"`make benchmark ARGS=\"data=video data.path={video.name} data.max_frames=240 workers=W +repeats=3\"`: "
             "240 frames of a 1080p clip of the real frames, outputs written (masks, COCO results, overlay video).",
             "", "| workers | decode floor s/frame | end to end s/frame | frames/s |", "|---|---|---|---|"]
    ends, cpus = {}, {}
    for workers in (1, 2):
        cfg = load_config(["data=video", f"data.path={video}", "data.max_frames=240", f"workers={workers}"])
        rows = dict((name, median) for name, median, _ in measure_run(cfg, repeats=3))
        ends[workers] = rows["end to end"]
        lines.append(f"| {workers} | {rows['decode floor']:.4f} | {rows['end to end']:.4f} | "
                     f"{1 / rows['end to end']:.1f} |")
        cpus[workers] = rows["end to end, processor"]
        if workers == 1:
            decode_cpu = rows["decode, processor"]
    cpu = cpus[1]
    threads = ", as FFmpeg's decoding threads run beside the stages" if cpu > 1.05 * ends[1] else ""
    return [*lines, "", f"Two workers: **{ends[1] / ends[2]:.2f}x** one.", "",
            f"Processor time (user and system, every thread) of the same one-worker runs: {cpu:.4f} s per frame "
            f"({cpu / ends[1]:.2f} cores busy{threads}), of which decoding alone took {decode_cpu:.4f} "
            f"({decode_cpu / cpu:.0%}: an H.264 frame is decoded whole, where a JPEG is read at an eighth of its "
            f"size). Two cores need at least {cpu / 2:.4f} s per frame for that work, so two workers can be at most "
            f"{2 * ends[1] / cpu:.2f}x one worker; they reached {cpu / 2 / ends[2]:.0%} of that bound. Their own runs "
            f"took {cpus[2]:.4f} s of processor time per frame, {cpus[2] / cpu - 1:+.0%} on one worker's for the "
            f"same frames (two busy cores slowing each other, and frames passed between processes); two cores need "
            f"at least {cpus[2] / 2:.4f} s per frame for that, and they took {ends[2]:.4f} "
            f"({cpus[2] / 2 / ends[2]:.0%}).", ""]


def dynaseg_rows() -> list[str]:
    script = [sys.executable, str(ROOT / "experiments" / "dynaseg_speed.py")]
    short = subprocess.run([*script, "--tuned", "--bf16"], cwd=ROOT, capture_output=True, text=True, check=True)
    longer = subprocess.run([*script, "--bf16", "--profile", "--frames", "8", "--repeats", "3"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return [f"### {TITLES['dynaseg']}", "",
            "`python experiments/dynaseg_speed.py --tuned --bf16`: the reference script and `clusterer=dynaseg` at its "
            "settings, alternately in one run; then `experiment=dynaseg_tuned` end to end.", "", "```",
            short.stdout.strip(), "```", "",
            "Each side's clock includes its process's first fit, which pays the start-up of oneDNN's kernels "
            "(for bfloat16 about twice a warm fit's time); over 8 frames it weighs less: "
            "`python experiments/dynaseg_speed.py --bf16 --profile --frames 8 --repeats 3`. Its last line profiles "
            "DynaSeg float32 over the same 8 frames (after one unprofiled fit) and divides the measured ratio by "
            "the convolutions' share, which the reference runs too (the same layers, in oneDNN).", "", "```",
            longer.stdout.strip(), "```", ""]


PRUNER = "hydra.sweeper.pruner={_target_:optuna.pruners.MedianPruner,n_startup_trials:10,n_warmup_steps:10}"


SWEEP_REPEATS = 3
# trials of the short sweep that measures what a sweep costs whatever its length
SHORT_TRIALS = 2


def timed_sweep(*extra: str) -> tuple[float, list[str], float, float, float]:
    """One ``kmeans_dice`` sweep (100 trials unless ``extra`` says otherwise, two at a time) in a fresh process and
    a fresh store: its wall seconds, its trials' states, its best value, the seconds its complete trials' stage
    timers say scoring the frames took, and the seconds its complete trials' MLflow runs lasted (start to end)."""
    import mlflow
    import optuna

    with tempfile.TemporaryDirectory() as folder:
        store = f"sqlite:///{folder}/mlruns/mlflow.db"
        command = [sys.executable, "-m", "src.run", "-m", "hparams_search=kmeans_dice", "hydra.sweeper.n_jobs=2",
                   f"paths.mlruns_dir={folder}/mlruns", f"hydra.sweep.dir={folder}/multirun", *extra]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "CI": "1", "MLFLOW_TRACKING_URI": store})
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"error: the sweep failed:\n{done.stderr[-2000:]}")
        study = optuna.load_study(study_name="kmeans_dice", storage=f"sqlite:///{folder}/mlruns/optuna.db")
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        scoring = sum(t.user_attrs["metrics"]["seconds_per_image"] * t.user_attrs["metrics"]["n_frames"]
                      for t in complete)
        client = mlflow.MlflowClient(store)
        runs = client.search_runs([client.get_experiment_by_name("football-players").experiment_id],
                                  "attributes.status = 'FINISHED'", max_results=1000)
        # the study's parent run, which lasts the whole sweep, has no trial number
        in_runs = sum(run.info.end_time - run.info.start_time for run in runs
                      if "optuna.trial" in run.data.tags) / 1000
        return seconds, [t.state.name for t in study.trials], study.best_value, scoring, in_runs


def sweep_rows() -> list[str]:
    sweeps = {"kmeans_dice": [], "kmeans_dice + MedianPruner": [PRUNER]}
    runs = {name: [] for name in sweeps}
    short = []
    for _ in range(SWEEP_REPEATS):  # alternating, as the machine's load drifts
        for name, extra in sweeps.items():
            runs[name].append(timed_sweep(*extra))
        short.append(timed_sweep(f"hydra.sweeper.n_trials={SHORT_TRIALS}")[0])
    rows = [f"### {TITLES['sweep']}", "",
            "`python -m src.run -m hparams_search=kmeans_dice hydra.sweeper.n_jobs=2`: 100 trials of k-means on the "
            "50 frames, two trials at a time (each with `workers=auto`, one worker here), each an MLflow run; wall "
            "clock from start to exit, process start included, median of "
            f"{SWEEP_REPEATS} alternating runs (their range in brackets). The second row adds Optuna's median pruner "
            "(trials report their running Dice every 10 frames).", "",
            "| sweep | trials | complete | pruned | seconds | best mean Dice | same study in every run |",
            "|---|---|---|---|---|---|---|"]
    for name, done in runs.items():
        seconds = [wall for wall, *_ in done]
        _, states, best, *_ = done[-1]
        same = all(run[1:3] == (states, best) for run in done)
        rows.append(f"| {name} | {len(states)} | {states.count('COMPLETE')} | {states.count('PRUNED')} | "
                    f"**{statistics.median(seconds):.0f}** ({min(seconds):.0f}-{max(seconds):.0f}) | {best:.4f} | "
                    f"{'yes' if same else 'no'} |")
    first = runs["kmeans_dice"]
    wall = statistics.median(run[0] for run in first)
    scoring = statistics.median(run[3] for run in first)
    in_runs = statistics.median(run[4] for run in first)
    floor = (f"Where the first sweep's time goes (medians over its runs), in seconds of the two trial processes "
             f"together ({2 * wall:.0f} s: twice the wall clock): the trials' stage timers (wall clock inside each "
             f"trial, features cached) add up to **{scoring:.0f} s** of scoring frames; the trials' MLflow runs, "
             f"from start to end, to {in_runs:.0f} s, so {in_runs - scoring:.0f} s went to what a run does besides "
             "the stages (COCO scoring, writing predictions, logging); the other "
             f"{2 * wall - in_runs:.0f} s were outside the runs: process start, Hydra composing each trial's "
             "config and setting up its job, building its stages, Optuna asking and telling, and a batch's "
             "faster trial waiting for the slower one.")
    # wall = fixed + trials x per_trial; a sweep of SHORT_TRIALS trials gives the fixed part
    n_trials = len(first[-1][1])
    short_wall = statistics.median(short)
    per_trial = (wall - short_wall) / (n_trials - SHORT_TRIALS)
    fixed = short_wall - SHORT_TRIALS * per_trial
    frames_free = fixed + n_trials * (per_trial - scoring / n_trials / 2)
    split = (f"The same sweep cut to {SHORT_TRIALS} trials takes **{short_wall:.1f} s** (median of "
             f"{SWEEP_REPEATS}, {min(short):.1f}-{max(short):.1f}; a fresh store each time, as above). So a sweep "
             f"costs about {fixed:.1f} s whatever its length (process start, the MLflow store and parent run, "
             "starting the two trial processes and filling their frame and feature caches, the study's report at "
             f"the end) and **{per_trial:.2f} s** of wall clock per further trial, of which scoring the frames is "
             f"{scoring / n_trials / 2:.2f} s (half of a trial's stage timers: two run at a time). Were the frames "
             f"free, {n_trials} trials would still take about **{frames_free:.0f} s**: a trial's Hydra job, stages, "
             "MLflow run, COCO scoring and Optuna round cost that much on two cores.")
    return [*rows, "", floor, "", split, ""]


# Peak RSS counts the pages a process had before it exec'ed: a run forked straight from this (large) process
# would report this process's size. A small launcher forks the run, samples the proportional set size (PSS:
# pages shared between the forked workers counted once) of its process tree every SAMPLE seconds while it runs
# (/proc), and reports what os.wait4 gives for it.
SAMPLE = 0.5
LAUNCHER = """
import os, sys, time
def tree_pss(pid):
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/smaps_rollup") as rollup:
                total += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
            with open(f"/proc/{current}/task/{current}/children") as children:
                todo += [int(child) for child in children.read().split()]
        except (OSError, StopIteration):
            pass
    return total
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
samples = []
while True:
    done, status, usage = os.wait4(pid, os.WNOHANG)
    if done:
        break
    samples.append(tree_pss(pid))
    time.sleep(float(sys.argv[1]))
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, *samples)
"""


def peak_rss(overrides: list[str]) -> tuple[float, float, list[float]]:
    """Peak resident memory in MB of ``python -m src.run <overrides>`` (its process and workers), its seconds,
    and its process tree's PSS in MB every ``SAMPLE`` seconds while it ran."""
    with tempfile.TemporaryDirectory() as folder:
        command = ["-m", "src.run", *overrides, f"paths.mlruns_dir={folder}/mlruns", f"hydra.run.dir={folder}/out",
                   "logger.log_images=false"]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", LAUNCHER, str(SAMPLE), *command], cwd=ROOT,
                              capture_output=True, text=True, env={**os.environ, "CI": "1"})
        seconds = time.perf_counter() - start
        code, maxrss, *samples = (int(v) for v in done.stdout.split())
        if code != 0:
            raise SystemExit(f"error: {' '.join(overrides)} failed: {done.stderr[-1500:]}")
    return maxrss / 1024, seconds, [kb / 1024 for kb in samples]


def thirds(samples: list[float]) -> tuple[float, float]:
    """Median of the middle and of the last third of a run's memory samples: after start-up, and at its end."""
    third = len(samples) // 3
    return statistics.median(samples[third:2 * third]), statistics.median(samples[2 * third:])


def memory_rows(video: Path, loop: Path, repeats: int = 3) -> list[str]:
    """Peak memory at two numbers of frames, and the longer run's memory sampled while it runs; ``loop`` is a clip
    of 12 frames repeated, whose memory can only grow with the number of frames, as the frames do not change."""
    tuned_loop = ["experiment=dynaseg_tuned", "data=video", f"data.path={loop}"]
    # the longer runs last long enough that the middle third of their samples is past start-up
    runs = [("default, images", ["data.n_images=20"], ["data.n_images=200"]),
            ("default, video", ["data=video", f"data.path={video}", "data.max_frames=100"],
             ["data=video", f"data.path={video}", "data.max_frames=300"]),
            # from 12 frames on: torch's allocator settles over a run's first frames
            ("dynaseg_tuned, images", ["experiment=dynaseg_tuned", "data.n_images=12"],
             ["experiment=dynaseg_tuned", "data.n_images=40"]),
            # eight times the frames: one run's peak moves by some 40 MB, which over 36 frames read as growth
            ("dynaseg_tuned, the same 12 frames looped (video)", [*tuned_loop, "data.max_frames=12"],
             [*tuned_loop, "data.max_frames=96"])]
    lines = [f"### {TITLES['memory']}", "",
             "Peak resident set (`ru_maxrss` from `os.wait4`: the largest of the run's process and its workers) of "
             "`python -m src.run`, started from a small launcher process (a process forked from a large one would "
             f"count that one's pages), at two numbers of frames, median of {repeats} runs each; MLflow images "
             "off. A peak is the largest of a run's moments, so a longer run, with more of them, can show a higher "
             f"one without growing: the last two columns are the memory of the longer run's process tree (PSS, which "
             f"counts the pages its forked workers share once), sampled every {SAMPLE} s, median over the middle and "
             "over the last third of the run (median of the runs).", "",
             "| run | frames | peak MB | frames | peak MB | peak growth per 100 frames | longer run: middle third MB "
             "| last third MB |", "|---|---|---|---|---|---|---|---|"]
    for name, small, large in runs:
        low = statistics.median(peak_rss(small)[0] for _ in range(repeats))
        longer = [peak_rss(large) for _ in range(repeats)]
        high = statistics.median(peak for peak, _, _ in longer)
        middle, last = (statistics.median(values) for values in zip(*(thirds(s) for _, _, s in longer)))
        n_small, n_large = (int(re.search(r"=(\d+)$", o[-1]).group(1)) for o in (small, large))
        lines.append(f"| {name} | {n_small} | {low:.0f} | {n_large} | {high:.0f} | "
                     f"{(high - low) / (n_large - n_small) * 100:+.0f} MB | {middle:.0f} | {last:.0f} |")
    return [*lines, ""]


def make_clip(folder: Path, frames: int | None = None, seconds: float = 16) -> Path:
    """A 1080p clip of the real frames (the first ``frames`` of them, or all), looped to ``seconds``."""
    # resolved: a link to a relative path (FOOTBALL_DATA=../shared/football) would point nowhere from the folder
    images = sorted((Path(os.environ["FOOTBALL_DATA"]).resolve() / "images").glob("*.jpg"))[:frames]
    source = folder / f"frames{len(images)}"
    source.mkdir()
    for image in images:
        (source / image.name).symlink_to(image)
    clip = folder / f"clip{len(images)}.mp4"
    subprocess.run([sys.executable, "-m", "src.clip", str(source), str(clip), "--seconds", str(seconds)], cwd=ROOT,
                   check=True, capture_output=True)
    return clip


def previous_sections() -> dict[str, list[str]]:
    """The sections of the SPEED.md on disk, by name: what a run that skips them keeps."""
    if not SPEED.exists():
        return {}
    names = {f"### {title}": name for name, title in {**TITLES, "gpu": GPU_TITLE}.items()}
    sections: dict[str, list[str]] = {}
    current = None
    for line in SPEED.read_text().splitlines():
        if line.startswith("### "):
            current = names.get(line)
        if current is not None:
            sections.setdefault(current, []).append(line)
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="a 1080p clip for the video rows (default: made from the frames)")
    parser.add_argument("--skip", nargs="*", default=[], choices=SECTIONS)
    parser.add_argument("--gpu", type=Path, help="the markdown gpu_speed.py --out wrote on a GPU machine")
    args = parser.parse_args()
    if args.gpu is not None and not args.gpu.is_file():
        parser.error(f"--gpu={args.gpu} is not a file; give the markdown experiments/gpu_speed.py --out wrote")
    if args.gpu is not None and not args.gpu.read_text().startswith(f"### {GPU_TITLE}"):
        raise SystemExit(f"error: --gpu={args.gpu} does not start with '### {GPU_TITLE}'; give the file "
                         "experiments/gpu_speed.py --out wrote")
    if not os.environ.get("FOOTBALL_DATA"):
        raise SystemExit("error: FOOTBALL_DATA is not set; point it at the real frames (../shared/football)")
    with tempfile.TemporaryDirectory() as folder:
        runs = set(SECTIONS) - set(args.skip)
        video = args.video.resolve() if args.video else make_clip(Path(folder)) if runs & {"video", "memory"} else None
        loop = make_clip(Path(folder), frames=12, seconds=4) if "memory" in runs else None
        makers = {"stages": stage_rows, "parallel": parallel_rows, "video": lambda: video_rows(video),
                  "dynaseg": dynaseg_rows, "sweep": sweep_rows, "memory": lambda: memory_rows(video, loop)}
        kept = previous_sections()
        gpu = (args.gpu.read_text() if args.gpu else "\n".join(kept.get("gpu", []))).strip().splitlines()
        where = ("the GPU rows of issue 17 come from `experiments/gpu_speed.py` on a GPU machine, in their own "
                 "section" if gpu else "the GPU rows of issue 17 are unmeasured, and `experiments/gpu_speed.py` "
                 "measures them on a GPU machine")
        body = [f"Written by `experiments/speed_report.py` on {date.today()} ({platform.node()}, "
                f"{os.cpu_count()} cores, no GPU used here: {where}); each section "
                "says when it was measured. Default experiment unless said otherwise: "
                f"{OmegaConf.select(load_config([]), 'data.n_images')} real frames, scale 8.", ""]
        for name in SECTIONS:
            if name in args.skip:
                body += kept.get(name, [])
            else:
                title, *rest = makers[name]()
                body += [title, "", f"Measured on {date.today()}.", *rest]
        if gpu:
            body += [*gpu, ""]
    SPEED.write_text("\n".join(["# Speed", "", *body]) + "\n")
    splice(REPORT, SPEED_SECTION, body)
    print(SPEED.read_text())


if __name__ == "__main__":
    main()
