"""On-disk cache of per-image arrays, keyed by everything that determines them.

A sweep over clusterers re-reads CNN features instead of recomputing them.
Entries are written to a temporary file and renamed, so an interrupted run
never leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def cache_key(**parts) -> str:
    """A stable hex key of JSON-serializable ``parts`` (order of keywords does not matter)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


class ArrayCache:
    """Lists of arrays stored as ``.npz`` files under ``folder``; None disables caching.

    Parameters
    ----------
    folder : str or Path or None
    """

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder is not None else None

    def load(self, key: str) -> list[np.ndarray] | None:
        """The arrays stored under ``key``, or None when absent (or caching is off)."""
        if self.folder is None:
            return None
        path = self.folder / f"{key}.npz"
        if not path.is_file():
            return None
        with np.load(path) as stored:
            return [stored[f"a{i}"] for i in range(len(stored.files))]

    def save(self, key: str, arrays: list[np.ndarray]) -> None:
        """Store ``arrays`` under ``key`` atomically."""
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, **{f"a{i}": array for i, array in enumerate(arrays)})
            os.replace(temporary, self.folder / f"{key}.npz")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
