"""Hydra entry point: ``python -m src.train [model=autoencoder|unet_recon|unet_supervised] [overrides]``.

Trains the model on the frames outside the evaluation sample, scores it on
that sample (reconstruction error, or Dice/IoU/Hungarian mIoU for the
supervised U-Net), writes it to ``out_dir`` and logs the loss curve,
pictures, scores and the model folder (``model/``) to one MLflow run.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import tempfile

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.compose import (
    build,
    build_tracker,
    build_training,
    check_group_choices,
    check_override_keys,
    multirun_dir,
    parent_run_id,
)
from src.errors import LabError
from src.signals import stop_signals, stops_as_interrupts
from src.sweep.parent_run import parents_ended_on_failure
from src.urls import redact

log = logging.getLogger("src.train")


def prepare(cfg: DictConfig) -> dict:
    """Check every option and decode the frames; nothing is trained or logged yet."""
    from src.data import FootballDataset
    from src.training import training_ids

    training = build_training(cfg)
    evaluation = build(cfg.data, "data")
    everything = FootballDataset(**_all_frames(cfg))
    ids = training_ids(everything.image_ids, evaluation.image_ids, training.settings.frames,
                       training.settings.allow_overlap, source=evaluation.source)
    train_frames = [everything.frame(i) for i in ids]
    eval_frames = evaluation.frames()
    shapes = {f.image.shape for f in train_frames + eval_frames}
    if len(shapes) > 1:
        raise LabError(f"data.scale={evaluation.scale} gives frames of several sizes {sorted(shapes)}; "
                       "training stacks frames, so use a dataset of one frame size")
    return {"settings": training.settings, "model": training.model, "out_dir": training.out_dir,
            "train_frames": train_frames, "eval_frames": eval_frames, "dataset": evaluation}


def _all_frames(cfg: DictConfig) -> dict:
    options = OmegaConf.to_container(cfg.data, resolve=True)
    options.pop("_target_")
    # the evaluation sample said it already when the synthetic set stands in
    return {**options, "n_images": None, "warn_synthetic": False}


def run_training(cfg: DictConfig) -> tuple[dict[str, float], str]:
    """Train, score, save and log one model; returns the scores and the MLflow run id."""
    from src import viz
    from src.models import model_name
    from src.models.checkpoint import save_model
    from src.training import evaluate_reconstruction, evaluate_segmentation, predict, train

    tracker = build_tracker(cfg)
    parts = prepare(cfg)
    settings, model = parts["settings"], parts["model"]
    images = np.stack([f.image for f in parts["train_frames"]])
    eval_images = np.stack([f.image for f in parts["eval_frames"]])
    name, task = model_name(model), model.task
    out_dir = parts["out_dir"]
    segmentation = task == "segmentation"
    targets = np.stack([f.mask for f in parts["train_frames"]]) if segmentation else None
    params = OmegaConf.to_container(cfg, resolve=True)
    params.pop("paths", None)
    tags = {"task": "train", "model.task": task, "supervised": str(segmentation).lower(),
            "train.n_frames": str(len(images)), "dataset": parts["dataset"].source}
    # a multirun's jobs go under its parent run
    with tracker.run(params, tags=tags, parent_run_id=parent_run_id(multirun_dir())) as run_id:
        history = train(model, images, targets, settings, seed=cfg.seed,
                        on_epoch=lambda epoch, loss: tracker.log_metric("train/loss", loss, step=epoch))
        if segmentation:
            scores = evaluate_segmentation(model, eval_images, np.stack([f.mask for f in parts["eval_frames"]]),
                                           threads=settings.threads)
        else:
            scores = evaluate_reconstruction(model, eval_images, threads=settings.threads)
        scores.update({"train_seconds": float(sum(history.seconds)), "train_seconds_per_epoch":
                       float(np.median(history.seconds)), "train_loss_final": history.loss[-1],
                       "train_frames": float(len(images))})
        tracker.log_metrics({f"eval/{k}" if k not in ("train_seconds", "train_seconds_per_epoch", "train_loss_final",
                                                        "train_frames") else k: v for k, v in scores.items()})
        outputs = predict(model, eval_images[:cfg.n_pictures], threads=settings.threads) if cfg.n_pictures else []
        for frame, output in zip(parts["eval_frames"], outputs):
            if segmentation:
                picture = viz.readable_overlay(frame.image, output[0] > 0, frame.mask, tracker.image_width)
            else:
                picture = np.concatenate([frame.image, (np.clip(output.transpose(1, 2, 0), 0, 1) * 255)
                                          .astype(np.uint8)], axis=1)
            tracker.log_image(picture, f"{'predictions' if segmentation else 'reconstructions'}/{frame.stem}.png")
        meta = {"mlflow_run_id": run_id, "train_image_ids": [f.image_id for f in parts["train_frames"]],
                "scale": parts["eval_frames"][0].scale, "settings": dataclasses.asdict(settings)}
        kwargs = {key: value for key, value in OmegaConf.to_container(cfg.model, resolve=True).items()
                  if key != "_target_"}
        save_model(model.cpu(), out_dir, name=name, kwargs=kwargs, task=task, meta=meta)
        with tempfile.TemporaryDirectory() as tmp:
            save_model(model, tmp, name=name, kwargs=kwargs, task=task, meta=meta)
            tracker.log_folder(tmp, "model")
    log.info("trained %s (%s) on %d frames in %.1f s; %s", name, task, len(images),
             scores["train_seconds"], ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    log.info("model in %s and in MLflow run %s (runs:/%s/model)", out_dir, run_id, run_id)
    return scores, run_id


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> None:
    try:
        with stops_as_interrupts():
            run_training(cfg)
    except LabError as exc:
        raise SystemExit(redact(f"error: {exc}")) from None


if __name__ == "__main__":
    try:
        check_group_choices(sys.argv[1:], config_name="train")
        check_override_keys(sys.argv[1:], config_name="train")
    except LabError as exc:
        raise SystemExit(redact(f"error: {exc}")) from None
    with stop_signals("src.train"), parents_ended_on_failure():
        main()
