"""Store URLs: credentials masked wherever they are shown, and a lock for creating SQLite stores.

Tracking and study stores are named by URLs that may carry a password
(``postgresql://user:secret@host/db``) or a token in the query. Every log
line, error, param, tag and config artifact the project writes goes through
``redact`` first.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

from filelock import FileLock

MASK = "***"
# a password runs to the last character before "@", as SQLAlchemy reads it: it may hold "/", ":" or quotes. Hydra
# shows an override's colons escaped (postgresql\://lab\:pw@...), and a list of overrides doubles the backslashes
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*(?:\\{1,2})?://)(?P<user>[^:/@\s'\"\\]*)"
                       r"(?P<colon>(?:\\{1,2})?:)(?P<secret>[^@\s]+)@")
# a web address's user name alone is often a token (https://<token>@host)
_TOKEN_USER = re.compile(r"(?P<scheme>\bhttps?(?:\\{1,2})?://)[^:/@\s'\"\\]+@")
_QUERY_SECRET = re.compile(r"(?i)(?P<key>[?&](?:password|passwd|pwd|token|access_token|api_key|apikey|secret|"
                           r"sig|signature)=)(?P<secret>[^&#\s'\"]+)")


def redact(text: str) -> str:
    """``text`` with every URL password, web address user name and secret query value replaced by ``***``.

    >>> redact("postgresql://lab:hunter2@db:5432/optuna?sslmode=require&password=x")
    'postgresql://lab:***@db:5432/optuna?sslmode=require&password=***'
    >>> redact("https://ghp_abc@github.com/x")
    'https://***@github.com/x'
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}{m['colon']}{MASK}@", str(text))
    text = _TOKEN_USER.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that masks credentials in the formatted message (and traceback text) of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, or None for other URLs and in-memory SQLite."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return None
    path = url[len(prefix):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def store_lock(url: str):
    """An inter-process lock for creating or migrating the SQLite store of ``url`` (a no-op for servers).

    Processes that open a new SQLite store together would each create and
    migrate its schema, and a half-migrated schema breaks the store for good;
    holding this lock while opening serialises them. Server databases are
    left to their own transactions.
    """
    path = sqlite_path(url)
    if path is None or not path.parent.is_dir():
        return contextlib.nullcontext()
    return FileLock(f"{path}.lock")


def make_sqlite_folder(url: str) -> None:
    """Create the folder of a ``sqlite:///`` URL's database file, so SQLite can create the file; others: nothing."""
    database = sqlite_path(url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)


__all__ = ["MASK", "RedactingFilter", "make_sqlite_folder", "redact", "sqlite_path", "store_lock"]
