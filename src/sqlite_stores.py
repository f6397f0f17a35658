"""SQLite stores (MLflow's runs, Optuna's studies) in write-ahead-log mode, committed without a sync each time.

A run logs its params, tags, metrics and artifacts' records in tens of
transactions, and a sweep's trial adds Optuna's; SQLite's default journal
syncs the disk at every commit, which made the commits, not the frames, the
largest cost of a short trial. In WAL mode with ``synchronous=NORMAL`` a
commit is appended to the log and synced at checkpoints: a crash of the
process loses nothing, a power cut at most the last transactions. Readers
and the writer of several processes also stop blocking each other.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy import event
from sqlalchemy.engine import Engine

_REGISTERED: list[bool] = []


def _set_pragmas(connection, _record) -> None:
    if isinstance(connection, sqlite3.Connection):
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def use_write_ahead_log() -> None:
    """Open every SQLite database this process connects to through SQLAlchemy in WAL mode (idempotent)."""
    if not _REGISTERED:
        event.listen(Engine, "connect", _set_pragmas)
        _REGISTERED.append(True)


__all__ = ["use_write_ahead_log"]
