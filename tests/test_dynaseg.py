"""DynaSeg on tiny synthetic images: the loss and the label count fall, the silhouette stop, dynamic mu, bad values."""

import numpy as np
import pytest

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


@pytest.mark.parametrize("kwargs, message", [
    ({"n_channels": 1}, r"clusterer.n_channels=1 is out of range"),
    ({"iterations": 0}, r"clusterer.iterations=0 is out of range"),
    ({"alpha": 0.0}, r"clusterer.alpha=0.0 is out of range"),
    ({"lr": 0.0}, r"clusterer.lr=0.0 is out of range"),
    ({"mu_mode": "dynamic"}, r"clusterer.mu_mode='dynamic'"),
    ({"stop": "never"}, r"clusterer.stop='never'"),
    ({"device": "tpu"}, r"clusterer.device='tpu'"),
])
def test_bad_values_are_one_line(kwargs, message):
    with pytest.raises(LabError, match=message):
        DynaSegClusterer(**kwargs)


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
