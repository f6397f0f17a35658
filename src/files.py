"""Files written whole or not at all: a reader, or a run that fails half-way, never finds half a file."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_whole(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a hidden sibling that replaces it in one step; returns the path.

    ``os.replace`` within a folder is atomic, so ``path`` holds either its
    old text or all of the new; the sibling is removed if writing fails.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path
