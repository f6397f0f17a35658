"""Files written whole or not at all (a reader, or a run that fails half-way, never finds half a file), and what
identifies a file's content for a cache."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_whole(path: str | Path, text: str | bytes) -> Path:
    """Write ``text`` (bytes as they are, such as a PNG figure's) to ``path`` through a hidden sibling that
    replaces it in one step; returns the path.

    ``os.replace`` within a folder is atomic, so ``path`` holds either its
    old content or all of the new; the sibling is removed if writing fails.
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(text, bytes):
            partial.write_bytes(text)
        else:
            partial.write_text(text)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def file_identity(path: str | Path) -> dict:
    """What identifies a file's content cheaply: resolved path, size and modification time."""
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
