"""DynaSeg on tiny synthetic images: the loss and the label count fall, the silhouette stop, dynamic mu, bad values."""

import numpy as np
import pytest
import torch

from src.clustering import AutoKClusterer, KMeansClusterer
from src.clustering.dynaseg import DynaSegClusterer, dynamic_mu
from src.errors import LabError
from src.metrics import hungarian_miou


def two_regions(h=24, w=32, seed=0):
    """A left and a right region of different colour, with pixel noise; returns features and truth."""
    rng = np.random.default_rng(seed)
    truth = np.zeros((h, w), bool)
    truth[:, w // 2:] = True
    image = np.where(truth[..., None], [2.0, -1.0, 0.5], [-2.0, 1.0, -0.5]) + rng.normal(0, 0.3, (h, w, 3))
    return image.astype(np.float32), truth


@pytest.mark.parametrize("mode, n_labels, expected", [
    ("fixed", 40, 5.0), ("fsf", 30, 30 / 15), ("scf", 25, 50 / 25), ("fsf", 10, 10 / 15),
])
def test_dynamic_mu_follows_its_formula(mode, n_labels, expected):
    assert dynamic_mu(mode, n_labels) == pytest.approx(expected)


def test_alpha_overrides_the_default():
    assert dynamic_mu("scf", 10, alpha=20.0) == pytest.approx(2.0)


def test_loss_and_label_count_fall():
    features, _ = two_regions()
    clusterer = DynaSegClusterer(n_channels=16, n_blocks=2, iterations=40, mu_mode="fixed", stop="threshold",
                                 min_labels=2, device="cpu")
    labels = clusterer.fit_predict(features)
    first, last = clusterer.fit_history[0], clusterer.fit_history[-1]
    assert first["n_labels"] > last["n_labels"]
    assert last["loss"] < first["loss"]
    assert labels.shape == features.shape[:2] and labels.min() == 0
    assert clusterer.fit_metrics["dynaseg_iterations"] == len(clusterer.fit_history)


def test_silhouette_stop_keeps_the_two_regions_apart():
    features, truth = two_regions()
    clusterer = DynaSegClusterer(n_channels=16, n_blocks=2, iterations=60, mu_mode="scf", device="cpu")
    labels = clusterer.fit_predict(features)
    # silhouette on the untrained network's features picks a small k (2 or 3 here), never 1
    assert clusterer.fit_metrics["dynaseg_target"] in (2, 3)
    assert clusterer.fit_metrics["dynaseg_labels"] >= 2
    assert hungarian_miou(labels, truth) > 0.9


def test_same_seed_same_labels_and_input_untouched():
    features, _ = two_regions(seed=3)
    before = features.copy()
    first = DynaSegClusterer(n_channels=8, n_blocks=1, iterations=5, device="cpu", seed=4).fit_predict(features)
    second = DynaSegClusterer(n_channels=8, n_blocks=1, iterations=5, device="cpu", seed=4).fit_predict(features)
    assert np.array_equal(first, second) and np.array_equal(features, before)


@pytest.mark.parametrize("seed, sample", [(0, 300), (5, 300), (2, 5000)])
def test_stop_target_from_the_sampled_pixels_equals_the_choice_over_all_pixels(seed, sample):
    # three colour groups with noise, as (p, H, W) first-iteration features; the picker sees only the
    # silhouette's sampled pixels (all of them when the image has fewer)
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, (40, 60))
    features = rng.normal(0, 0.4, (6, 40, 60)) + 3.0 * np.eye(3, 6)[groups].transpose(2, 0, 1)
    clusterer = DynaSegClusterer(k_values=(2, 3, 4, 6), silhouette_sample=sample, device="cpu", seed=seed)
    chosen = clusterer._target(torch.from_numpy(features.astype(np.float32)))
    every_pixel = AutoKClusterer(KMeansClusterer(n_clusters=2, fit_sample=min(2000, sample), seed=seed),
                                 k_values=(2, 3, 4, 6), silhouette_sample=sample, seed=seed, inertia_curve=False)
    every_pixel.fit_predict(features.astype(np.float32).transpose(1, 2, 0))
    assert chosen == every_pixel.fit_metrics["chosen_k"] == 3
    assert clusterer.target_picker.fit_metrics == every_pixel.fit_metrics


@pytest.mark.parametrize("kwargs, message", [
    ({"silhouette_sample": 8}, r"silhouette_sample=8 leaves too few pixels to score k=8 of k_values by silhouette; "
                               r"use at least 9"),
    ({"n_channels": 1}, r"n_channels=1 is out of range"),
    ({"iterations": 0}, r"iterations=0 is out of range"),
    ({"alpha": 0.0}, r"alpha=0.0 is out of range"),
    ({"lr": 0.0}, r"lr=0.0 is out of range"),
    ({"momentum": -1}, r"momentum=-1 is out of range; allowed \[0, inf\]"),
    ({"weight_decay": -1e-4}, r"weight_decay=-0.0001 is out of range"),
    ({"mu_mode": "dynamic"}, r"mu_mode='dynamic'"),
    ({"stop": "never"}, r"stop='never'"),
    ({"device": "tpu"}, r"device='tpu'"),
    ({"extractor": "vit"}, r"extractor='vit' is not allowed; choose one of \['cnn', 'fpn'\]"),
    ({"snapshots": [3, 0]}, r"snapshots=0 is out of range; allowed \[1, inf\]"),
    ({"sync_every": 0}, r"sync_every=0 is out of range"),
    ({"threads": 0}, r"threads=0 is out of range"),
    ({"images_per_batch": 0}, r"images_per_batch=0 is out of range"),
])
def test_bad_values_are_one_line(kwargs, message):
    with pytest.raises(LabError, match=message):
        DynaSegClusterer(**kwargs)


def test_a_frame_with_fewer_pixels_than_the_stops_largest_k_is_one_line():
    clusterer = DynaSegClusterer(n_channels=4, iterations=1, device="cpu")
    with pytest.raises(LabError, match=r"^k_values has k=8, more than the 6 pixels of an image") as caught:
        clusterer.fit_predict(np.random.default_rng(0).random((2, 3, 3)).astype(np.float32))
    assert caught.value.key == "k_values"
    DynaSegClusterer(n_channels=4, iterations=1, device="cpu", stop="threshold").check_input(6)


def test_a_fixed_threshold_takes_any_silhouette_sample():
    clusterer = DynaSegClusterer(stop="threshold", min_labels=4, silhouette_sample=2, device="cpu")
    assert clusterer._target(torch.zeros(3, 4, 5)) == 4


def test_a_run_logs_the_loss_curve_of_every_image(make_cfg):
    from mlflow.tracking import MlflowClient

    from src.run import run_and_log

    cfg = make_cfg("clusterer=dynaseg", "clusterer.n_channels=8", "clusterer.n_blocks=1", "clusterer.iterations=4",
                   "clusterer.stop=threshold", "clusterer.min_labels=2", "data.n_images=2", "data.scale=16",
                   "logger.log_images=false")
    summary, run_id = run_and_log(cfg)
    client = MlflowClient(cfg.logger.tracking_uri)
    keys = [k for k in client.get_run(run_id).data.metrics if k.startswith("fit/loss/")]
    assert len(keys) == 2
    for key in keys:
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert steps == list(range(1, len(steps) + 1)) and 1 <= len(steps) <= 4
    assert 1 <= summary["dynaseg_iterations_mean"] <= 4


@pytest.mark.parametrize("extractor", ["cnn", "fpn"])
def test_host_checks_do_not_change_the_result(extractor):
    features, _ = two_regions(seed=1)
    settings = dict(n_channels=16, n_blocks=2, extractor=extractor, iterations=40, mu_mode="fsf", stop="threshold",
                    device="cpu")
    probe = DynaSegClusterer(min_labels=2, **settings)
    probe.fit_predict(features)
    threshold = int(probe.fit_history[9]["n_labels"])  # reached by iteration 10
    runs = []
    for sync_every in (1, 50):
        clusterer = DynaSegClusterer(min_labels=threshold, snapshots=[1, 2, 39], sync_every=sync_every, **settings)
        runs.append((clusterer.fit_predict(features), clusterer.fit_history, clusterer.fit_snapshots))
    (labels, history, snapshots), (labels50, history50, snapshots50) = runs
    # sync_every=50 never asks the host, so it trained all 40 steps past the stop and must still agree
    assert len(history) <= 10
    assert np.array_equal(labels, labels50) and history == history50
    assert sorted(snapshots) == sorted(snapshots50) == [k for k in (1, 2) if k <= len(history)]
    assert all(np.array_equal(snapshots[k], snapshots50[k]) for k in snapshots)
    # the labels returned are those of the iteration that reached the threshold
    assert history[-1]["n_labels"] <= threshold
    assert len(history) == 1 or history[-2]["n_labels"] > threshold
    assert len(np.unique(labels)) == history[-1]["n_labels"]


def test_fpn_decoder_learns_on_many_input_channels():
    features, truth = two_regions(seed=2)
    rng = np.random.default_rng(0)
    # stand-in for upsampled backbone stages: the two-region signal spread over 40 channels
    stages = features @ rng.normal(size=(3, 40)).astype(np.float32)
    clusterer = DynaSegClusterer(n_channels=16, extractor="fpn", iterations=60, mu_mode="scf", device="cpu")
    labels = clusterer.fit_predict(stages)
    assert clusterer.fit_history[-1]["loss"] < clusterer.fit_history[0]["loss"]
    assert hungarian_miou(labels, truth) > 0.9


def test_out_of_memory_is_one_line_and_fails_the_run(make_cfg, monkeypatch):
    import torch
    from mlflow.tracking import MlflowClient

    from src.clustering.dynaseg import DynaSegClusterer as Clusterer
    from src.run import run

    def exhausted(self, images):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(Clusterer, "_optimise", exhausted)
    cfg = make_cfg("clusterer=dynaseg", "data.n_images=2", "data.scale=16")
    with pytest.raises(LabError, match=r"^clusterer=dynaseg ran out of cpu memory on a \d+x\d+ image with "
                                       r"n_channels=100; lower clusterer.n_channels"):
        run(cfg)
    (failed,) = MlflowClient(cfg.logger.tracking_uri).search_runs(
        [e.experiment_id for e in MlflowClient(cfg.logger.tracking_uri).search_experiments()])
    assert failed.info.status == "FAILED" and "ran out of" in failed.data.tags["error"]


def test_label_maps_of_chosen_iterations_are_logged_as_images(make_cfg):
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    from src.run import run_and_log

    cfg = make_cfg("clusterer=dynaseg", "clusterer.n_channels=8", "clusterer.n_blocks=1", "clusterer.iterations=3",
                   "clusterer.stop=threshold", "clusterer.min_labels=2", "clusterer.snapshots=[1,3]",
                   "data.n_images=1", "data.scale=16")
    _, run_id = run_and_log(cfg)
    root = Path(MlflowClient(cfg.logger.tracking_uri).get_run(run_id).info.artifact_uri.removeprefix("file://"))
    names = sorted(p.name for p in (root / "fit_labels").iterdir())
    assert names and all(n.endswith(("_iter0001.png", "_iter0003.png")) for n in names)
    assert any(n.endswith("_iter0001.png") for n in names)
    # each kept label map is also scored: its Dice after post-processing is a step metric at that iteration
    client = MlflowClient(cfg.logger.tracking_uri)
    (key,) = [k for k in client.get_run(run_id).data.metrics if k.startswith("fit/dice/")]
    history = client.get_metric_history(run_id, key)
    assert 1 in [m.step for m in history] and all(0.0 <= m.value <= 1.0 for m in history)


@pytest.mark.parametrize("mu_mode, stop", [("fixed", "threshold"), ("scf", "silhouette")])
def test_images_optimised_together_get_the_labels_of_one_at_a_time(mu_mode, stop):
    images = [two_regions(seed=seed)[0] for seed in range(3)] + [two_regions(h=16, w=20, seed=3)[0]]
    settings = dict(n_channels=16, n_blocks=2, iterations=30, mu_mode=mu_mode, stop=stop, min_labels=3,
                    snapshots=[1, 5], device="cpu")
    alone = DynaSegClusterer(**settings).fit_many(images)
    together = DynaSegClusterer(images_per_batch=3, **settings).fit_many(images)
    # each image stops at its own iteration even inside a batch; the odd-sized last one runs on its own
    assert len({len(fit.history) for fit in alone}) > 1
    for one, batched in zip(alone, together):
        assert np.array_equal(one.labels, batched.labels)
        assert len(one.history) == len(batched.history)
        assert [h["n_labels"] for h in one.history] == [h["n_labels"] for h in batched.history]
        assert [h["loss"] for h in one.history] == pytest.approx([h["loss"] for h in batched.history], rel=1e-4)
        assert sorted(one.snapshots) == sorted(batched.snapshots)
        assert one.metrics["dynaseg_target"] == batched.metrics["dynaseg_target"]


def test_out_of_memory_halves_the_batch_before_giving_up(monkeypatch, caplog):
    import torch

    from src.clustering.dynaseg import DynaSegClusterer as Clusterer

    real, sizes = Clusterer._optimise, []

    def small_memory(self, images):
        sizes.append(len(images))
        if len(images) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(self, images)

    monkeypatch.setattr(Clusterer, "_optimise", small_memory)
    images = [two_regions(seed=seed)[0] for seed in range(3)]
    fits = Clusterer(n_channels=8, n_blocks=1, iterations=3, images_per_batch=4, device="cpu").fit_many(images)
    assert sizes == [3, 1, 1, 1] and len(fits) == 3 and all(f.labels.shape == (24, 32) for f in fits)
    assert "ran out of cpu memory on 3 images at once; trying 1" in caplog.text


def test_a_run_in_batches_scores_every_frame_as_one_at_a_time(make_cfg):
    from src.compose import build_stages
    from src.pipeline import evaluate

    runs = []
    for per_batch in (1, 2):
        stages = build_stages(make_cfg("clusterer=dynaseg", "clusterer.n_channels=8", "clusterer.n_blocks=1",
                                       "clusterer.iterations=5", f"clusterer.images_per_batch={per_batch}",
                                       "clusterer.snapshots=[2]", "data.n_images=3", "data.scale=16"))
        seen = []
        results, summary = evaluate(stages.data, stages.features, stages.clusterer, stages.postprocess,
                                    on_result=lambda done, _, seen=seen: seen.append(done))
        runs.append((results, summary, seen))
    (alone, summary_alone, seen_alone), (batched, summary_batched, seen_batched) = runs
    # results still arrive one frame at a time, so a sweep can prune mid-run
    assert seen_alone == seen_batched == [1, 2, 3]
    for one, two in zip(alone, batched):
        assert one.frame.image_id == two.frame.image_id and np.array_equal(one.labels, two.labels)
        assert one.metrics["dice"] == two.metrics["dice"]
        assert [h.get("dice") for h in one.fit_history] == [h.get("dice") for h in two.fit_history]
        assert two.seconds["cluster"] > 0 and two.seconds["load"] >= 0
    assert summary_alone["dice_mean"] == summary_batched["dice_mean"]


def unfused_loss(responses, mu):
    """The loss as autograd would build it: cross-entropy against the argmax plus mu times the continuity."""
    import torch.nn.functional as F

    from src.clustering.dynaseg import continuity_loss

    labels = responses.argmax(dim=1)
    return F.cross_entropy(responses, labels, reduction="none").mean(dim=(1, 2)) + mu * continuity_loss(responses)


@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_loss_equals_the_autograd_loss_and_its_gradient(channels_last):
    import torch

    from src.clustering.dynaseg import SelfLabelLoss

    generator = torch.Generator().manual_seed(0)
    # two images of 6 responses, stored as one (1, 12, H, W) map like the grouped network's output
    stacked = torch.randn(1, 12, 7, 9, generator=generator) * 3
    if channels_last:
        stacked = stacked.contiguous(memory_format=torch.channels_last)
    mu = torch.tensor([5.0, 0.5])
    weights = torch.tensor([1.0, 2.0])  # a loss gradient other than ones reaches each image
    results = []
    for fused in (False, True):
        leaf = stacked.clone().requires_grad_()
        responses = leaf.view(2, 6, 7, 9)
        if fused:
            losses = SelfLabelLoss.apply(leaf, responses.detach().argmax(dim=1), mu)
        else:
            losses = unfused_loss(responses, mu)
        (losses * weights).sum().backward()
        results.append((losses.detach(), leaf.grad))
    (losses, grad), (fused_losses, fused_grad) = results
    assert torch.allclose(fused_losses, losses, rtol=1e-6, atol=1e-6)
    assert torch.allclose(fused_grad, grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("images", [1, 2])
def test_gradient_reaches_the_network_output_in_its_own_layout(monkeypatch, images):
    from src.clustering import dynaseg

    # a per-image view of a one-image output changes its batch stride; BatchNorm's backward on a CPU then leaves
    # its channels-last kernel for a generic one several times slower
    seen = []
    forward = dynaseg.PixelCNN.forward

    def recording(self, image):
        features, responses = forward(self, image)
        responses.register_hook(lambda grad: seen.append((grad.stride(), responses.stride())))
        return features, responses

    monkeypatch.setattr(dynaseg.PixelCNN, "forward", recording)
    rng = np.random.default_rng(0)
    clusterer = dynaseg.DynaSegClusterer(n_channels=8, n_blocks=1, iterations=2, stop="threshold",
                                         images_per_batch=images, device="cpu")
    clusterer.fit_many([rng.random((6, 10, 3)) for _ in range(images)])
    assert len(seen) == 2 and all(grad == output for grad, output in seen)


def test_fused_loss_of_a_one_pixel_high_image_is_finite():
    import torch
    import torch.nn.functional as F

    from src.clustering.dynaseg import SelfLabelLoss, continuity_loss

    responses = torch.randn(1, 4, 1, 10, requires_grad=True)
    loss = SelfLabelLoss.apply(responses, responses.detach().argmax(dim=1), torch.tensor([2.0]))
    horizontal_only = (responses[:, :, :, 1:] - responses[:, :, :, :-1]).abs().mean()
    assert torch.isnan(continuity_loss(responses.detach())).all()  # the unfused mean over no vertical pairs
    assert torch.isfinite(loss).all()
    expected = F.cross_entropy(responses, responses.argmax(dim=1)) + 2.0 * horizontal_only
    assert torch.allclose(loss, expected)


def test_channels_last_gives_the_labels_of_the_plain_layout():
    features, truth = two_regions(seed=5)
    settings = dict(n_channels=16, n_blocks=2, iterations=12, mu_mode="scf", stop="threshold", min_labels=2,
                    snapshots=[1, 6, 12], device="cpu")
    runs = [DynaSegClusterer(channels_last=layout, **settings) for layout in (False, True, True)]
    labels = [clusterer.fit_predict(features) for clusterer in runs]
    plain, fast, again = runs
    # same math: on this small image float rounding does not move a single label within 12 steps
    assert sorted(fast.fit_snapshots) == sorted(plain.fit_snapshots) == [1, 6, 12]
    for step in plain.fit_snapshots:
        assert np.array_equal(fast.fit_snapshots[step], plain.fit_snapshots[step])
    assert np.array_equal(labels[0], labels[1])
    assert [h["n_labels"] for h in fast.fit_history] == [h["n_labels"] for h in plain.fit_history]
    assert [h["loss"] for h in fast.fit_history] == pytest.approx([h["loss"] for h in plain.fit_history], rel=1e-4)
    # deterministic: the same config twice gives the same numbers exactly
    assert np.array_equal(labels[1], labels[2]) and fast.fit_history == again.fit_history


def test_bfloat16_is_deterministic_and_close_to_float32():
    features, truth = two_regions(seed=6)
    settings = dict(n_channels=16, n_blocks=2, iterations=30, mu_mode="scf", stop="threshold", min_labels=2,
                    device="cpu")
    full = DynaSegClusterer(**settings).fit_predict(features)
    half = [DynaSegClusterer(precision="bfloat16", **settings) for _ in range(2)]
    labels = [clusterer.fit_predict(features) for clusterer in half]
    assert np.array_equal(labels[0], labels[1]) and half[0].fit_history == half[1].fit_history
    # not the same labels as float32, but the same segmentation of this easy image
    assert hungarian_miou(labels[0], truth) > 0.9 and hungarian_miou(full, truth) > 0.9


def test_bad_precision_is_one_line():
    with pytest.raises(LabError, match=r"precision='float16' is not allowed; choose one of \['bfloat16', 'float32'\]"):
        DynaSegClusterer(precision="float16")
