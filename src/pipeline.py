"""Runs the stages over frames and gathers per-image and summary metrics.

Knows neither Hydra nor MLflow: it takes built stage objects and returns numbers.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from src.clustering import inertia, n_clusters, silhouette
from src.clustering.fit import ClusterFit, fit_images
from src.frame import Frame
from src.heap import release_freed_memory
from src.metrics import (
    blob_recall,
    dice,
    dice_from_counts,
    hungarian_miou,
    iou_from_counts,
    oracle_mask,
    outline_error_share,
    overlap_counts,
    region_oracle_mask,
)
from src.parallel import ordered_map
from src.postprocess import PlayerMask, majority
from src.progress import progress
from src.signals import raise_if_stopped
from src.summary import RunningSummary

log = logging.getLogger(__name__)
# frames of a stream between hand-backs of freed heap memory (src.heap); a trim costs well under a frame's time
TRIM_EVERY = 50
# a worker process's thread limit, kept for its life (see limit_threads)
_LIMITS: list = []


@dataclass
class ImageResult:
    """Everything one frame produced: label map, player mask, metrics and stage times."""

    frame: Frame
    labels: np.ndarray
    player: PlayerMask
    metrics: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    # per-iteration values of a clusterer that optimises (e.g. DynaSeg's loss, q' and mu)
    fit_history: list[dict[str, float]] = field(default_factory=list)
    # label maps it kept at chosen iterations, by iteration
    fit_snapshots: dict[int, np.ndarray] = field(default_factory=dict)
    # what evaluate's ``prepare`` made of this result where it was scored (a sink's output, ready to write)
    prepared: object = None
    # the ways the frame produced nothing to select (``degenerate_kinds``), found where it was scored
    degenerate: frozenset = frozenset()
    # features a frame worker computed for this frame in a run that keeps them (a sweep's trial), on their way
    # to the main process, whose later trials and the workers it forks for them find them there: what the
    # store keeps (``MemoizedFeatures.entry``)
    fresh_features: np.ndarray | tuple[np.ndarray, ...] | None = None


@contextmanager
def timed(seconds: dict[str, float], stage: str):
    """Add the wall-clock seconds of the ``with`` block to ``seconds[stage]``."""
    start = time.perf_counter()
    yield
    seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start


def _decode_frame(image_id, dataset) -> tuple[Frame, float]:
    start = time.perf_counter()
    frame = dataset.frame(image_id)
    return frame, time.perf_counter() - start


def process_frames(frames: list[Frame], features, clusterer, postprocess, *, silhouette_sample: int = 2000,
                   seed: int = 0) -> list[ImageResult]:
    """Features -> clusters -> player mask -> metrics for frames clustered in one call (see ``fit_images``);
    the clustering time is shared evenly among them."""
    seconds: list[dict[str, float]] = [{} for _ in frames]
    feats = []
    for frame, spent in zip(frames, seconds):
        with timed(spent, "features"):
            feats.append(features(frame))
    start = time.perf_counter()
    fits = fit_images(clusterer, feats)
    for spent in seconds:
        spent["cluster"] = (time.perf_counter() - start) / len(frames)
    return [score_frame(frame, image_feats, fit, postprocess, spent, silhouette_sample=silhouette_sample, seed=seed)
            for frame, image_feats, fit, spent in zip(frames, feats, fits, seconds)]


def score_frame(frame: Frame, feats: np.ndarray, fit: ClusterFit, postprocess, seconds: dict[str, float], *,
                silhouette_sample: int = 2000, seed: int = 0) -> ImageResult:
    """Player mask and metrics of one clustered frame."""
    labels = fit.labels
    with timed(seconds, "postprocess"):
        player = postprocess(labels, frame.image)
        if fit.members:
            player = majority([player, *(postprocess(member, frame.image) for member in fit.members)],
                              getattr(postprocess, "connectivity", 2))
    with timed(seconds, "metrics"):
        metrics = {
            "silhouette": silhouette(feats, labels, sample_size=silhouette_sample, seed=seed),
            "inertia": inertia(feats, labels),
            "n_clusters": float(n_clusters(labels)),
            "n_components": float(player.n_components),
            # 1 for a frame the post-processing found no pitch in (a crowd shot, a graphic)
            "no_field": float("no_field" in player.reasons),
            # what the clusterer chose for this image (e.g. k picked by silhouette), when it says
            **fit.metrics,
        }
        if frame.mask is not None:
            metrics["n_instances"] = float(frame.n_instances)
            metrics["component_count_error"] = float(abs(player.n_components - frame.n_instances))
            counts = overlap_counts(player.mask, frame.mask)
            metrics.update({key: float(value) for key, value in counts.items()})
            metrics["dice"] = dice_from_counts(**counts)
            metrics["iou"] = iou_from_counts(**counts)
            # the clustering's own quality, before post-processing chooses player clusters
            metrics["oracle_dice"] = dice(oracle_mask(labels, frame.mask), frame.mask)
            metrics["hungarian_miou"] = hungarian_miou(labels, frame.mask)
            # a dropped player as a number, and the ceiling of any rule that keeps whole regions of the clusters
            metrics["blob_recall"] = blob_recall(player.mask, frame.mask, instances=frame.instances)
            metrics["region_oracle_dice"] = dice(region_oracle_mask(labels, frame.mask), frame.mask)
            # whether what is wrong is the outline (near 1) or the choice of regions (near 0)
            metrics["outline_error_share"] = outline_error_share(player.mask, frame.mask)
        history = snapshot_scores(fit, frame, postprocess)
    return ImageResult(frame=frame, labels=labels, player=player, metrics=metrics, seconds=seconds,
                       fit_history=history, fit_snapshots=fit.snapshots)


def snapshot_scores(fit: ClusterFit, frame: Frame, postprocess) -> list[dict[str, float]]:
    """The clusterer's per-iteration history, with the Dice of each kept label map after post-processing."""
    history = [dict(values) for values in fit.history]
    if frame.mask is not None:
        for iteration, snapshot in fit.snapshots.items():
            history[iteration - 1]["dice"] = dice(postprocess(snapshot, frame.image).mask, frame.mask)
    return history


def evaluate(dataset, features, clusterer, postprocess, *, silhouette_sample: int = 2000, seed: int = 0,
             threads: int | None = 1, on_result: Callable[[int, RunningSummary], None] | None = None,
             sink: Callable[[ImageResult], None] | None = None,
             prepare: Callable[[ImageResult], object] | None = None,
             workers: int = 1, keep: bool = True) -> tuple[list[ImageResult], dict[str, float]]:
    """Run the whole pipeline over a dataset's sample, or over a stream (a dataset with ``stream()``).

    Returns the results and the summary (``src.summary``). A sampled
    dataset's frames are decoded where they are scored (in the worker), and
    every result is returned; decoded frames join this process's frame cache
    (``FootballDataset.frame``), and features that workers computed its
    feature store (``MemoizedFeatures.remember``, where ``features`` has one),
    so the trials of a sweep decode and featurize each frame once.
    A stream (a video), or any run with ``keep=False``, keeps nothing of a
    frame once its result has gone to ``sink`` (which may write its outputs
    and numbers to disk): its result list is empty and the
    summary is accumulated as frames come, so memory does not grow with the
    stream's length. ``threads`` caps the BLAS and OpenMP threads of the
    numerical libraries (None leaves them alone): one frame's problems are
    small, and waking a thread pool for each costs more than it saves.
    ``on_result(frames_done, running_summary)`` is called after each frame
    (a sweep reports intermediate scores through it and may stop the run by
    raising). A clusterer with ``images_per_batch`` gets that many frames at once.
    ``workers`` > 1 scores frames in that many processes (``src.parallel``);
    results are handled here and in order, so the numbers are those of one
    worker. A stream is decoded here, in order; a sampled dataset's frames
    in the workers, as decoding is a third of a frame's work. ``prepare``, where given, runs on each
    result where it was scored (in its worker) and its return value goes to
    the sink as ``result.prepared``: the part of writing outputs that frames
    can do side by side (``PredictionWriter.prepare``); its seconds are
    ``result.seconds["prepare"]``. With ``prepare`` and ``keep=False``, and
    frames not cached, the sink gets each result ``without_pixels``: what it
    writes of the arrays, ``prepare`` has made already, and a worker sends
    only numbers and names back.
    """
    streaming = hasattr(dataset, "stream")
    if streaming:
        # a stream's count is an estimate from its stated length: enough for an ETA
        source, total = _timed(dataset.stream()), getattr(dataset, "expected_frames", None)
    else:
        source, total = dataset.image_ids, len(dataset.image_ids)
    batch_size = getattr(clusterer, "images_per_batch", 1)
    results, running, degenerate = [], RunningSummary(), Counter()
    keep = keep and not streaming
    cached = getattr(dataset, "cache_frames", False)
    light = prepare is not None and not keep and not cached
    share = workers > 1 and cached and hasattr(features, "remember")
    bar = progress(total=total, desc="frames", unit="frame")
    scored_batches = ordered_map(_score_batch, _batches(source, batch_size), workers, None if streaming else dataset,
                                 features, clusterer, postprocess, silhouette_sample, seed, prepare, light, share,
                                 setup=partial(limit_threads, threads))
    with threadpool_limits(limits=threads), bar:
        for scored in scored_batches:
            raise_if_stopped()
            for result in scored:
                if workers > 1 and not streaming:
                    result.frame = dataset.frame(result.frame.image_id, decoded=result.frame)
                if result.fresh_features is not None:
                    features.remember(result.frame, result.fresh_features)
                    result.fresh_features = None
                degenerate.update(result.degenerate)
                running.add(result.metrics, result.seconds)
                if sink is not None:
                    sink(result)
                if keep:
                    results.append(result)
                elif running.frames % TRIM_EVERY == 0:
                    release_freed_memory()
                bar.update()
                if on_result is not None:
                    on_result(running.frames, running)
    warn_degenerate(degenerate, running.frames)
    return results, running.value()


def _score_batch(batch, dataset, features, clusterer, postprocess, silhouette_sample, seed, prepare, light, share):
    """A batch scored (what a worker process runs): image ids of ``dataset``, decoded here, or, with no
    dataset, ``(frame, load seconds)`` pairs of a stream. ``light`` results leave their pixels here;
    with ``share`` they take along the features computed here (``ImageResult.fresh_features``)."""
    loaded = [_decode_frame(image_id, dataset) for image_id in batch] if dataset is not None else batch
    # frames made in memory are never kept, so there is nothing to hand back for them
    computed = [share and frame.path is not None and not features.holds(frame) for frame, _ in loaded]
    results = process_frames([frame for frame, _ in loaded], features, clusterer, postprocess,
                             silhouette_sample=silhouette_sample, seed=seed)
    for result, (_, seconds), fresh in zip(results, loaded, computed):
        if fresh:
            result.fresh_features = features.entry(result.frame)
        result.seconds["load"] = seconds
        result.degenerate = frozenset(degenerate_kinds(result))
        if prepare is not None:
            with timed(result.seconds, "prepare"):
                result.prepared = prepare(result)
    return [without_pixels(result) for result in results] if light else results


def without_pixels(result: ImageResult) -> ImageResult:
    """``result`` without its label map, masks, components and image: what is left is a few numbers and
    names, which cost next to nothing to send from a worker, where the arrays are most of a result's bytes."""
    return replace(result, labels=None, player=replace(result.player, mask=None, components=None),
                   frame=replace(result.frame, image=None, mask=None, instances=None), fit_snapshots={})


def limit_threads(threads: int | None) -> None:
    """Cap the numerical libraries' threads at ``threads`` for the rest of this (worker) process.

    Done once per worker: setting a limit scans the process's loaded
    libraries, which cost more per frame than some stages.
    """
    _LIMITS.append(threadpool_limits(limits=threads))


def _timed(frames: Iterator[Frame]) -> Iterator[tuple[Frame, float]]:
    """Each frame of a stream with the seconds its decoding took."""
    while True:
        start = time.perf_counter()
        frame = next(frames, None)
        if frame is None:
            return
        yield frame, time.perf_counter() - start


def _batches(items, size: int) -> Iterator[list]:
    items = iter(items)
    while batch := list(itertools.islice(items, size)):
        yield batch


def degenerate_kinds(result: ImageResult) -> set[str]:
    """The ways a frame produced nothing to select: all noise, one cluster, no pitch, an empty mask."""
    kinds = set()
    if (result.labels < 0).all():
        kinds.add("all_noise")
    elif result.metrics["n_clusters"] <= 1 and not (result.labels < 0).any():
        kinds.add("one_cluster")
    if "no_field" in result.player.reasons:
        kinds.add("no_field")
    if not result.player.mask.any():
        kinds.add("empty")
    return kinds


def warn_degenerate(counts: Counter, total: int) -> None:
    """One warning line for each way a run produced nothing to select (counts from ``degenerate_kinds``)."""
    if counts["all_noise"]:
        log.warning("the clustering labelled every pixel noise (-1) in %d of %d frames, so their masks are empty: "
                    "a density clusterer's radius is too small for these features (DBSCAN: clusterer.eps=auto)",
                    counts["all_noise"], total)
    if counts["one_cluster"]:
        log.warning("the clustering found a single cluster in %d of %d frames, so nothing stands apart from the "
                    "pitch: raise the number of clusters or lower the clusterer's radius", counts["one_cluster"], total)
    if counts["no_field"]:
        log.warning("%d of %d frames show no pitch (no green dominant colour); their masks are empty (per-image "
                    "metric no_field)", counts["no_field"], total)
    if counts["empty"] == total and total and not counts["all_noise"] and counts["no_field"] < total:
        log.warning("the player mask is empty in all %d frames: the post-processing dropped every candidate", total)
