"""Progress bars for long work: on a terminal only, quiet in CI, in logs and in pipes."""

from __future__ import annotations

import os
import sys

from tqdm import tqdm


def show_progress() -> bool:
    """Whether bars are drawn: stderr is a terminal and ``CI`` is unset (``LAB_PROGRESS=0/1`` forces it)."""
    forced = os.environ.get("LAB_PROGRESS")
    if forced is not None:
        return forced == "1"
    return sys.stderr.isatty() and not os.environ.get("CI")


def progress(iterable=None, *, total: int | None = None, desc: str = "", unit: str = "it", leave: bool = True):
    """A tqdm bar (rate and ETA) over ``iterable``, or a disabled one where ``show_progress`` is false."""
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=not show_progress(),
                dynamic_ncols=True, file=sys.stderr)


__all__ = ["progress", "show_progress"]
