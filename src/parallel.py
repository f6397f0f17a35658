"""Work on frames in parallel worker processes, in order, with few items in flight."""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait

from src.signals import raise_if_stopped

# seconds between checks for a stop signal whose exception Python dropped (src.signals.raise_if_stopped)
POLL = 0.5
# added to a worker's niceness: the main process is the serial part of a run (it decodes a video stream and
# writes outputs in order), and with as many workers as cores it must not wait for a share of a core
# (a 1080p stream on 2 cores: 1.5x one worker's throughput at equal priority, 1.8x with this)
WORKER_NICENESS = 10


class WorkerDied(RuntimeError):
    """A worker process ended without sending its result (killed, out of memory)."""


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), as a killed run must not leave
    workers computing on, holding its output pipes open."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request
        os._exit(1)


def _serve(conn: Connection, function: Callable, args: tuple, setup: Callable | None, parent: int) -> None:
    """A worker's loop: ``(index, item)`` in, ``(index, ok, result or exception)`` out; ``None`` ends it."""
    _die_with(parent)
    # the main process handles stops and ends the workers: a terminal's Ctrl-C reaches them too and is
    # ignored, and SIGTERM (how they are ended) must end them rather than the handler they were forked with
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.nice(WORKER_NICENESS)
    if setup is not None:
        setup()
    while (message := conn.recv()) is not None:
        index, item = message
        try:
            conn.send((index, True, function(item, *args)))
        except Exception as exc:  # noqa: BLE001 - handed to the main process, which raises it
            exc.add_note("in a worker process:\n" + traceback.format_exc().rstrip())
            try:
                conn.send((index, False, exc))
            except Exception:  # noqa: BLE001 - an exception that does not pickle is sent as text
                conn.send((index, False, RuntimeError("".join(traceback.format_exception(exc)).rstrip())))


def ordered_map(function: Callable, items: Iterable, workers: int, *args, setup: Callable | None = None) -> Iterator:
    """``function(item, *args)`` for each item, yielded in the items' order.

    With ``workers`` > 1 the calls run in that many forked processes, which
    inherit ``function`` and ``args`` (models, configs) instead of receiving
    them per item; only items and results cross between processes. At most
    ``2 * workers`` items are in flight (being worked on, or done and waiting
    for an earlier one), so a long stream is never read far ahead of its
    results and memory stays flat. Results equal those of one worker whenever
    ``function`` depends on its arguments alone. While every worker is busy,
    up to ``workers`` further items are read ahead, so that reading one (a
    video stream decodes its frame here) does not keep a worker waiting.
    Workers run ``WORKER_NICENESS`` below the caller's priority, so the
    caller's own part of the work (decoding a stream, writing in order)
    never waits for a core. ``setup()``, where given,
    runs once in each worker process before its first item (e.g. a thread
    limit for the process's life); it is not called with one worker, where
    the caller's own settings hold.

    Each worker has its own pipe and is sent an item only when it waits for
    one, and no thread helps the main process: when the caller stops (an
    error, a signal, closing this generator) the workers are killed at once,
    and nothing is left blocked on a pipe that no one reads. An error in a
    worker is raised here, with the worker's traceback as a note; a worker
    that dies raises ``WorkerDied``.
    """
    if workers <= 1:
        for item in items:
            yield function(item, *args)
        return
    context = multiprocessing.get_context("fork")
    processes, pipes = [], []
    try:
        for _ in range(workers):
            mine, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, function, args, setup, os.getpid()),
                                      daemon=True)
            process.start()
            theirs.close()
            processes.append(process)
            pipes.append(mine)
        yield from _dispatch(items, pipes, dict(zip(pipes, processes)), 2 * workers)
        for pipe in pipes:
            pipe.send(None)
        for process in processes:
            process.join()
    except BaseException:
        for process in processes:
            process.kill()
        for process in processes:
            process.join()
        raise
    finally:
        for pipe in pipes:
            pipe.close()


def _dispatch(items: Iterable, pipes: list[Connection], processes: dict, in_flight: int) -> Iterator:
    idle = list(pipes)
    busy: dict[Connection, int] = {}
    done: dict[int, object] = {}
    ahead: deque = deque()
    source = enumerate(items)
    following = 0
    exhausted = False
    while True:
        while idle and (ahead or not exhausted) and len(busy) + len(done) < in_flight:
            step = ahead.popleft() if ahead else next(source, None)
            if step is None:
                exhausted = True
                break
            pipe = idle.pop()
            pipe.send(step)
            busy[pipe] = step[0]
        if following in done:
            yield done.pop(following)
            following += 1
            continue
        if not busy:
            return
        # items are read ahead while every worker is busy: reading one may be work (a stream decodes its
        # frame here), and a worker that finishes should not wait for it
        if not exhausted and len(ahead) < len(pipes):
            step = next(source, None)
            if step is None:
                exhausted = True
            else:
                ahead.append(step)
            continue
        ready = wait(list(busy), timeout=POLL)
        raise_if_stopped()
        for pipe in ready:
            try:
                index, ok, value = pipe.recv()
            except EOFError:
                processes[pipe].join(timeout=1)
                raise WorkerDied(f"a worker process ended without its result (exit code {processes[pipe].exitcode}); "
                                 "it may have run out of memory: try fewer workers") from None
            del busy[pipe]
            idle.append(pipe)
            if not ok:
                raise value
            done[index] = value


__all__ = ["WorkerDied", "ordered_map"]
