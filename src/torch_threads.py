"""Torch CPU thread count for one block of work (imports torch)."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch CPU threads, then restore the previous count.

    A run caps BLAS/OpenMP threads at one for its many small per-frame problems,
    which would leave torch's larger convolutions on one core too.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
