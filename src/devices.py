"""The torch device a model runs on, from the ``device`` option of DynaSeg and training (imports torch)."""

from __future__ import annotations

import torch

from src.errors import LabError, check_choice

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def torch_device(choice: str, option: str = "device") -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu`` or ``cuda``.

    A one-line LabError naming ``option`` for any other value, and for
    ``cuda`` on a machine where no CUDA device is visible.
    """
    check_choice(option, choice, DEVICE_CHOICES)
    if choice == "cuda" and not torch.cuda.is_available():
        raise LabError(f"{option}='cuda' but no CUDA device is visible; use auto or cpu", key=option)
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(choice)
