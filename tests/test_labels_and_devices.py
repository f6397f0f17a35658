"""The small helpers several stages share: per-label means and counts, and the torch device choice."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from src.compose import available_cores, frame_workers, threads_per_worker
from src.devices import torch_device
from src.errors import LabError
from src.labels import coordinate_means, dense_labels, label_means


def test_label_means_count_pixels_and_leave_noise_out():
    labels = np.array([[0, 0, 2], [-1, 2, 2]])
    values = np.array([[[1.0], [3.0], [5.0]], [[100.0], [7.0], [9.0]]])
    means, counts = label_means(values, labels)
    assert counts.tolist() == [2, 0, 3]
    assert means[:, 0].tolist() == [2.0, 0.0, 7.0]


def test_label_means_of_noise_only_is_empty():
    means, counts = label_means(np.ones((2, 2, 3)), -np.ones((2, 2), int))
    assert means.shape == (0, 3) and counts.shape == (0,)


@pytest.mark.parametrize("labels", [
    np.random.default_rng(0).integers(-1, 12, (9, 14)),
    np.random.default_rng(1).integers(0, 2, (5, 6)).astype(bool),
    np.random.default_rng(2).integers(3, 7, (4, 4)).astype(np.int32),
    np.array([[5, 10 ** 9], [5, -3]]),     # values far apart: the sorting path
    np.zeros((0, 3), int),
])
def test_dense_labels_equal_numpy_unique(labels):
    values, index = dense_labels(labels)
    expected_values, expected_index = np.unique(labels, return_inverse=True)
    assert values.dtype == expected_values.dtype
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(index, expected_index.reshape(labels.shape))


def test_dense_labels_leave_their_input_alone():
    labels = np.array([[4, -1], [4, 9]])
    dense_labels(labels)
    assert labels.tolist() == [[4, -1], [4, 9]]


@pytest.mark.parametrize("second", [False, True])
def test_coordinate_means_equal_regionprops_moments(second):
    from skimage import measure
    parts = measure.label(np.random.default_rng(0).random((30, 40)) < 0.4)
    n = int(parts.max())
    means = coordinate_means(parts, n, second=second)
    assert means.shape == (n, 5 if second else 2)
    props = measure.regionprops(parts)
    assert np.allclose(means[:, :2], [p.centroid for p in props])
    if second:                          # covariance from the second moments, as regionprops' central moments give it
        cov = means[:, 4] - means[:, 0] * means[:, 1]
        assert np.allclose(cov, [p.moments_central[1, 1] / p.area for p in props])
    assert coordinate_means(np.zeros((3, 3), int), 2).tolist() == [[0, 0], [0, 0]]


def test_torch_device_choices():
    assert torch_device("cpu") == torch.device("cpu")
    assert torch_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(LabError, match=r"^train.device='tpu' is not allowed") as raised:
        torch_device("tpu", "train.device")
    assert raised.value.key == "train.device"
    if not torch.cuda.is_available():
        with pytest.raises(LabError, match=r"^device='cuda' but no CUDA device is visible"):
            torch_device("cuda")


class StandInClusterer:
    """What ``frame_workers`` reads of a clusterer: its torch device and threads (one, so a CPU run gets a
    worker per core)."""

    threads = 1

    def __init__(self, device: str):
        self.device = torch.device(device)


@pytest.mark.parametrize("workers", ["auto", 1])
def test_a_clusterer_on_cuda_scores_every_frame_in_the_process_that_opened_the_gpu(make_cfg, workers):
    cfg = make_cfg(f"workers={workers}", "threads=1")
    if workers == "auto" and available_cores() > 1:
        # the same run on the CPU forks a worker per core, so the rule is what keeps the GPU run in one process
        assert frame_workers(cfg, None, StandInClusterer("cpu"), 8) == min(available_cores(), 8)
    assert frame_workers(cfg, None, StandInClusterer("cuda"), 8) == 1


def test_forked_workers_are_refused_for_a_clusterer_on_cuda(make_cfg):
    cfg = make_cfg("workers=2", "threads=1")
    assert frame_workers(cfg, None, StandInClusterer("cpu"), 8) == 2
    with pytest.raises(LabError, match=r"^workers=2 with clusterer.device on CUDA: .*use workers=1 or auto") as raised:
        frame_workers(cfg, None, StandInClusterer("cuda"), 8)
    assert raised.value.key == "workers"


@pytest.mark.parametrize("block", [SimpleNamespace(threads=3), SimpleNamespace(backbone=SimpleNamespace(threads=3))],
                         ids=["trained model", "cnn"])
def test_a_feature_blocks_torch_threads_count_as_a_workers_cores(make_cfg, block):
    features = SimpleNamespace(blocks={"colour": SimpleNamespace(), "torch": block})
    cfg = make_cfg("workers=auto", "threads=1")
    assert threads_per_worker(cfg, features, StandInClusterer("cpu")) == 3
    assert frame_workers(cfg, features, StandInClusterer("cpu"), 8) == max(1, min(available_cores() // 3, 8))

