"""Which process owns a run or a trial, and whether that process is still alive.

A process is named ``host:pid:start`` (``start``: its start time in clock
ticks since boot, from ``/proc``), so a pid that the system reused for
another process is not mistaken for the owner.
"""

from __future__ import annotations

import os
import socket


def _stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of a process from ``/proc``, or None where there is no such entry."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; the fields after its closing parenthesis are fixed
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], fields[19]


def process_token(pid: int | None = None) -> str:
    """``host:pid:start`` of process ``pid`` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    stat = _stat(pid)
    return f"{socket.gethostname()}:{pid}:{stat[1] if stat else ''}"


def is_dead(token: str) -> bool:
    """Whether the process named by ``token`` (``host:pid[:start]``) is known to have ended.

    Only processes of this host can be judged; a token of another host, or
    one that cannot be parsed, is never called dead.
    """
    parts = str(token).split(":")
    if len(parts) == 2:
        parts.append("")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid, start = int(parts[1]), parts[2]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    stat = _stat(pid)
    if stat is None:
        return False
    # a zombie has ended but was not yet reaped by its parent
    return stat[0] == "Z" or (bool(start) and stat[1] != start)


__all__ = ["is_dead", "process_token"]
