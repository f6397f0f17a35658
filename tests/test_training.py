"""Autoencoder and U-Net: shapes, training on tiny frames, checkpoints, the frame split, bad options, src.train."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from src.compose import PROJECT_ROOT
from src.errors import LabError
from src.models import create_model, list_models
from src.models.checkpoint import load_model, save_model
from src.training import TrainSettings, evaluate_segmentation, foreground_weights, train, training_ids


def blobs(n=6, h=24, w=32, seed=0):
    """Green frames with a red box each, and the box masks."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, h, w, 3), np.uint8)
    images[...] = (40, 140, 50)
    masks = np.zeros((n, h, w), bool)
    for k in range(n):
        r, c = rng.integers(2, h - 10), rng.integers(2, w - 10)
        masks[k, r:r + 8, c:c + 6] = True
    images[masks] = (210, 40, 40)
    images = np.clip(images + rng.normal(0, 6, images.shape), 0, 255).astype(np.uint8)
    return images, masks


def test_registry_lists_both_models():
    assert list_models() == ["autoencoder", "unet"]


@pytest.mark.parametrize("name, kwargs", [("autoencoder", {}), ("unet", {}), ("unet", {"out_channels": 1})])
def test_maps_have_the_advertised_channels_and_reductions(name, kwargs):
    model = create_model(name, **kwargs).eval()
    x = torch.rand(1, 3, 27, 45)  # sides that are not multiples of the deepest stride
    with torch.no_grad():
        maps = model.feature_maps(x)
    assert maps["output"].shape[-2:] == (27, 45)
    for layer, (channels, reduction) in model.feature_info.items():
        assert maps[layer].shape[1] == channels
        # maps cover the input padded to the deepest stride; a feature extractor crops after upsampling
        padded = (-(-27 // model.multiple) * model.multiple, -(-45 // model.multiple) * model.multiple)
        assert (maps[layer].shape[-2] * reduction, maps[layer].shape[-1] * reduction) == padded


@pytest.mark.parametrize("model_name, kwargs, loss, use_masks", [
    ("autoencoder", {"widths": [8, 16], "code_channels": 4}, "mse", False),
    ("unet", {"widths": [8, 16]}, "weighted_mse", False),
    ("unet", {"widths": [8, 16], "out_channels": 1}, "bce_dice", True),
])
def test_training_lowers_the_loss_and_is_seeded(model_name, kwargs, loss, use_masks):
    images, masks = blobs()
    settings = TrainSettings(epochs=6, batch_size=3, lr=0.01, loss=loss, device="cpu")
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # training must not depend on the global generator, only on seed
        model = create_model(model_name, **kwargs)
        runs.append(train(model, images, masks if use_masks else None, settings, seed=5).loss)
    assert runs[0] == runs[1]
    assert runs[0][-1] < runs[0][0]


def test_supervised_unet_learns_the_boxes():
    images, masks = blobs(n=8)
    model = create_model("unet", widths=[8, 16], out_channels=1)
    train(model, images, masks, TrainSettings(epochs=40, batch_size=4, lr=0.02, loss="bce_dice", device="cpu"))
    assert evaluate_segmentation(model, images, masks)["dice_mean"] > 0.8


def test_foreground_weights_mark_pixels_unlike_the_frame():
    images, masks = blobs(n=2)
    weights = foreground_weights(images, 4.0, 25.0)
    assert np.all(weights[masks] == 5.0) and np.all(weights[~masks] == 1.0)


def test_training_frames_leave_out_the_evaluation_sample():
    assert training_ids([1, 2, 3, 4, 5], [2, 4], "outside_eval", False) == [1, 3, 5]
    assert training_ids([1, 2, 3], [2], "all", True) == [1, 2, 3]
    with pytest.raises(LabError, match=r"train.frames='all' trains on 1 of the 1 evaluation frames"):
        training_ids([1, 2, 3], [2], "all", False)
    with pytest.raises(LabError, match=r"leaves no frame to train on"):
        training_ids([1, 2], [1, 2], "outside_eval", False)


@pytest.mark.parametrize("changes, task, message", [
    ({"epochs": 0}, "reconstruction", r"train.epochs=0 is out of range"),
    ({"loss": "bce_dice"}, "reconstruction", r"train.loss='bce_dice' is not allowed; choose one of \['mse', "),
    ({"frames": "some"}, "reconstruction", r"train.frames='some' is not allowed"),
    ({"lr": 0.0}, "segmentation", r"train.lr=0.0 is out of range"),
    ({"foreground_distance": -5}, "segmentation", r"train.foreground_distance=-5 is out of range"),
])
def test_bad_training_options_are_one_line(changes, task, message):
    settings = TrainSettings(**{"loss": "bce_dice" if task == "segmentation" else "mse", **changes})
    with pytest.raises(LabError, match=message):
        settings.check(task)


def test_checkpoints_round_trip_and_refuse_another_architecture(tmp_path):
    model = create_model("autoencoder", widths=[8, 16], code_channels=4)
    save_model(model, tmp_path / "ae", name="autoencoder", kwargs={"widths": [8, 16], "code_channels": 4},
               task="reconstruction")
    loaded, description = load_model(tmp_path / "ae", option="x", expected="autoencoder")
    assert description["task"] == "reconstruction"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(LabError, match=r"x='.*ae' is a 'autoencoder' checkpoint, not 'unet'"):
        load_model(tmp_path / "ae", option="x", expected="unet")
    save_model(create_model("unet", widths=[8, 16]), tmp_path / "bad", name="autoencoder",
               kwargs={"widths": [8, 16], "code_channels": 4}, task="reconstruction")
    with pytest.raises(LabError, match=r"weights.pt does not fit the architecture in model.json"):
        load_model(tmp_path / "bad", option="x")
    with pytest.raises(LabError, match=r"holds no trained model"):
        load_model(tmp_path / "none", option="x")


def test_train_then_cluster_its_features_by_run_id(make_train_cfg, make_cfg):
    from mlflow.tracking import MlflowClient

    from src.run import run_and_log
    from src.train import run_training

    cfg = make_train_cfg("model=autoencoder", "model.widths=[8,16]", "model.code_channels=4",
                         "train.epochs=2", "train.batch_size=2", "data.n_images=2", "data.scale=16")
    scores, run_id = run_training(cfg)
    client = MlflowClient(cfg.logger.tracking_uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and np.isfinite(scores["recon_mse"])
    assert [m.step for m in client.get_metric_history(run_id, "train/loss")] == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(run_id, "model")}
    assert artifacts == {"model/model.json", "model/weights.pt"}
    assert {a.path for a in client.list_artifacts(run_id)} >= {"reconstructions"}
    summary, features_run = run_and_log(make_cfg(
        "features=autoencoder", f"features.blocks.learned.checkpoint=runs:/{run_id}/model", "data.n_images=2",
        "data.scale=16", "logger.log_images=false"))
    assert 0.0 <= summary["dice_mean"] <= 1.0
    assert client.get_run(features_run).data.tags["features.learned.trained_by"] == run_id


FORKED_TORCH = """
import sys, torch
from src.models.checkpoint import load_model
from src.parallel import ordered_map
from src.torch_threads import torch_threads

load_model(sys.argv[1], option="checkpoint")

def padded_sum(i):
    with torch_threads(2):
        return float(torch.nn.functional.pad(torch.ones(1, 3, 135, 240), (0, 1, 0, 1), mode="replicate").sum())

print(sum(ordered_map(padded_sum, range(4), 2)))
"""


def test_frame_workers_forked_after_a_model_is_loaded_can_run_torch(tmp_path):
    """Loading a model as large as the default autoencoder on several threads started OpenMP's pool, and the
    frame workers forked afterwards hung in their first torch call (``features=autoencoder`` never ended)."""
    kwargs = {"widths": [16, 32, 64], "code_channels": 8}  # the default autoencoder's
    folder = save_model(create_model("autoencoder", **kwargs), tmp_path / "ae", name="autoencoder", kwargs=kwargs,
                        task="reconstruction")
    proc = subprocess.run([sys.executable, "-c", FORKED_TORCH, str(folder)], capture_output=True, text=True,
                          timeout=60, cwd=PROJECT_ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout) == 4 * 3 * 136 * 241


def test_the_same_training_config_gives_the_same_model(make_train_cfg):
    from src.train import run_training

    overrides = ("model=unet_recon", "model.widths=[4,8]", "train.epochs=1", "train.batch_size=2",
                 "data.n_images=2", "data.scale=16")
    first, _ = run_training(make_train_cfg(*overrides))
    torch.manual_seed(999)  # the global generator must not matter: the initial weights come from the config's seed
    again, _ = run_training(make_train_cfg(*overrides))
    other, _ = run_training(make_train_cfg(*overrides, "seed=1"))
    assert first["train_loss_final"] == again["train_loss_final"] and first["recon_mse"] == again["recon_mse"]
    assert other["train_loss_final"] != first["train_loss_final"]


def test_a_training_seed_holds_out_the_sample_src_run_scores(make_train_cfg, make_cfg):
    from src.compose import build
    from src.train import prepare

    scored = build(make_cfg("data.n_images=4").data, "data").image_ids
    held_out = {seed: [f.image_id for f in prepare(make_train_cfg("data.n_images=4", f"seed={seed}"))["eval_frames"]]
                for seed in (0, 3)}
    assert held_out[0] == held_out[3] == scored
    other = [f.image_id for f in prepare(make_train_cfg("data.n_images=4", "data.seed=3"))["eval_frames"]]
    assert other != scored


def test_training_on_the_evaluation_frames_is_refused_before_any_run(make_train_cfg):
    from src.train import run_training

    cfg = make_train_cfg("train.frames=all", "data.n_images=2")
    with pytest.raises(LabError, match=r"train.frames='all' trains on 2 of the 2 evaluation frames"):
        run_training(cfg)
    import mlflow
    mlflow.set_tracking_uri(cfg.logger.tracking_uri)
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_a_checkpoint_of_another_architecture_is_refused_by_the_feature_set(make_cfg, models_dir):
    from src.compose import build

    cfg = make_cfg("features=unet_recon", f"features.blocks.learned.checkpoint={models_dir}/autoencoder_reconstruction")
    with pytest.raises(LabError, match=r"is a 'autoencoder' checkpoint, not 'unet'"):
        build(cfg.features, "features")


def test_an_unknown_run_id_is_one_line(make_cfg):
    from src.compose import build_stages

    cfg = make_cfg("features=autoencoder", "features.blocks.learned.checkpoint=runs:/0123456789abcdef/model")
    with pytest.raises(LabError, match=r"^features.blocks.learned.checkpoint='runs:/0123456789abcdef/model' cannot be "
                                       r"downloaded from sqlite:///"):
        build_stages(cfg)


TINY = ("model.widths=[4,8]", "train.epochs=1", "train.batch_size=2", "data.n_images=2", "data.scale=16")


@pytest.mark.parametrize("overrides, message", [
    (["seed=-1"], r"^seed=-1 is out of range"),
    (["n_pictures=-1"], r"^n_pictures=-1 is out of range"),
    (["out_dir=/proc/version"], r"^out_dir='/proc/version' is a file; give a folder$"),
    (["model.in_channels=1"], r"^model.in_channels=1: the frames are RGB; use 3$"),
    (["model=unet_supervised", "model.out_channels=2"], r"^model.out_channels=2 makes a segmentation model"),
    (["train.flip=no"], r"^train.flip='no' must be true or false$"),
    (["data=folder"], r"^data: training reads the football layout \(images/ and a COCO file\), not ImageFolder"),
    # "no" would read as true and let the evaluation frames into training
    (["train.frames=all", "train.allow_overlap=no"], r"^train.allow_overlap='no' must be true or false$"),
    (["data.root=null", "data.n_images=50"], r"the evaluation sample takes all 12; lower data.n_images; the "
                                             r"synthetic set stands in for real frames \(set FOOTBALL_DATA\), and "
                                             r"data.n_images=6 leaves it half"),
])
def test_bad_training_input_fails_before_any_run(make_train_cfg, overrides, message):
    from src.train import run_training

    cfg = make_train_cfg(*TINY, *overrides)
    with pytest.raises(LabError, match=message):
        run_training(cfg)
    import mlflow
    mlflow.set_tracking_uri(cfg.logger.tracking_uri)
    assert mlflow.search_runs(search_all_experiments=True).empty


def test_an_unwritable_model_folder_fails_before_any_run(make_train_cfg, tmp_path):
    from src.compose import build_training

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user writes to read-only folders (root)")
        with pytest.raises(LabError, match=r"^out_dir='.*locked/model' cannot be written \(.*locked: Permission"):
            build_training(make_train_cfg(*TINY, f"out_dir={locked / 'model'}"))
    finally:
        locked.chmod(0o700)


def test_a_training_whose_loss_blows_up_saves_nothing_and_fails_its_run(make_train_cfg, tmp_path):
    from mlflow.tracking import MlflowClient

    from src.train import run_training

    cfg = make_train_cfg(*TINY, "train.lr=1e30", "train.epochs=3")
    with pytest.raises(LabError, match=r"^train.lr=1e\+30: the training loss became nan in epoch \d, so nothing is "
                                       r"saved; lower train.lr$"):
        run_training(cfg)
    assert not (tmp_path / "trained").exists()
    (run,) = MlflowClient(cfg.logger.tracking_uri).search_runs(
        [e.experiment_id for e in MlflowClient(cfg.logger.tracking_uri).search_experiments()])
    assert run.info.status == "FAILED"


def test_pictures_follow_log_images_and_n_pictures(make_train_cfg):
    from mlflow.tracking import MlflowClient

    from src.train import run_training

    for overrides, expected in [(["logger.image_width=1000"], {"reconstructions", "model"}),
                                (["logger.log_images=false"], {"model"}), (["n_pictures=0"], {"model"})]:
        cfg = make_train_cfg(*TINY, *overrides)
        _, run_id = run_training(cfg)
        client = MlflowClient(cfg.logger.tracking_uri)
        assert {a.path for a in client.list_artifacts(run_id)} == expected
        if "reconstructions" in expected:
            # frame and reconstruction side by side, enlarged by a whole factor to at least logger.image_width
            first = client.list_artifacts(run_id, "reconstructions")[0].path
            with Image.open(client.download_artifacts(run_id, first)) as picture:
                assert 1000 <= picture.width < 2000


def test_a_training_multirun_keeps_each_jobs_model_and_checks_its_values_first(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "CI": "true", "MLFLOW_TRACKING_URI": store}
    env.pop("FOOTBALL_DATA", None)
    base = [sys.executable, "-m", "src.train", "-m", "data=synthetic", *TINY, f"paths.root_dir={tmp_path}"]
    bad = subprocess.run([*base, "train.lr=0.001,-1"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                         timeout=600)
    assert bad.returncode == 1 and bad.stderr.strip().splitlines()[-1] == \
        "error: train.lr=-1 is out of range; allowed (0, inf]"
    assert not list(tmp_path.glob("multirun/train/*/0/model"))
    proc = subprocess.run([*base, "seed=0,1"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (sweep,) = (tmp_path / "multirun" / "train").iterdir()
    weights = [(sweep / str(job) / "model" / "weights.pt").read_bytes() for job in (0, 1)]
    assert weights[0] != weights[1] and not (tmp_path / "models").exists()
    import mlflow
    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3
    assert sum("mlflow.parentRunId" in r.data.tags for r in runs) == 2


@pytest.mark.parametrize("argument, message", [
    ("train.epoch=3", r"error: train.epoch=3: train has no key 'epoch'; it has \[.*\]; did you mean epochs\?"),
    ("model=unet", r"error: model='unet' is not an option of config group model; choose one of "),
])
def test_a_mistyped_training_key_or_model_is_one_line(argument, message):
    proc = subprocess.run([sys.executable, "-m", "src.train", argument], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()
    assert re.match(message, line)
