"""The small helpers several stages share: per-label means and counts, and the torch device choice."""

import numpy as np
import pytest
import torch

from src.devices import torch_device
from src.errors import LabError
from src.labels import label_means


def test_label_means_count_pixels_and_leave_noise_out():
    labels = np.array([[0, 0, 2], [-1, 2, 2]])
    values = np.array([[[1.0], [3.0], [5.0]], [[100.0], [7.0], [9.0]]])
    means, counts = label_means(values, labels)
    assert counts.tolist() == [2, 0, 3]
    assert means[:, 0].tolist() == [2.0, 0.0, 7.0]


def test_label_means_of_noise_only_is_empty():
    means, counts = label_means(np.ones((2, 2, 3)), -np.ones((2, 2), int))
    assert means.shape == (0, 3) and counts.shape == (0,)


def test_torch_device_choices():
    assert torch_device("cpu") == torch.device("cpu")
    assert torch_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(LabError, match=r"^train.device='tpu' is not allowed") as raised:
        torch_device("tpu", "train.device")
    assert raised.value.key == "train.device"
    if not torch.cuda.is_available():
        with pytest.raises(LabError, match=r"^device='cuda' but no CUDA device is visible"):
            torch_device("cuda")
