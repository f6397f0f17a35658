"""Per-frame numbers kept on disk as they come, so that a run over a whole match holds none of them in memory."""

from __future__ import annotations

import csv
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path


class FrameTable:
    """One row per frame (id, file name, metrics, stage seconds), appended to an anonymous temporary file.

    The file is JSON lines and disappears when the table is closed, or when
    the process dies. Frames need not share their columns (a folder where
    only some frames are annotated): ``write_csv`` takes the union, in order
    of first appearance, and leaves a frame's missing cells empty.
    Non-finite values are stored as null.
    """

    def __init__(self):
        self._handle = tempfile.TemporaryFile("w+")
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def __enter__(self) -> FrameTable:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._handle.close()

    def add(self, result) -> None:
        """Append the row of one scored frame (an ``ImageResult``, or anything with its fields)."""
        self._handle.seek(0, 2)
        row = {"image_id": result.frame.image_id, "file_name": result.frame.file_name, **result.metrics,
               **{f"seconds_{stage}": value for stage, value in result.seconds.items()}}
        self._handle.write(json.dumps({key: _finite_or_none(value) for key, value in row.items()}) + "\n")
        self._rows += 1

    def rows(self) -> Iterator[dict]:
        """The rows so far, read back from the file in order."""
        self._handle.flush()
        self._handle.seek(0)
        for line in self._handle:
            yield json.loads(line)

    def columns(self) -> list[str]:
        """Every column any row has, in order of first appearance."""
        return list(dict.fromkeys(key for row in self.rows() for key in row))

    def write_csv(self, path: str | Path) -> None:
        """The rows as a CSV file with one header for all columns."""
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns())
            writer.writeheader()
            writer.writerows(self.rows())


def _finite_or_none(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value
