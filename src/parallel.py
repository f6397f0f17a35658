"""Work on frames in parallel worker processes, in order, with few items in flight."""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator

# what each worker process calls: set once per worker by the pool's initializer
_TASK: dict[str, tuple] = {}


def _set_task(function: Callable, args: tuple, setup: Callable | None) -> None:
    # the main process handles stops and ends the workers: a terminal's Ctrl-C reaches them too and is
    # ignored, and SIGTERM (how they are ended) must end them rather than the handler they were forked with
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _TASK["call"] = (function, args)
    if setup is not None:
        setup()


def _run_task(item):
    function, args = _TASK["call"]
    return function(item, *args)


def ordered_map(function: Callable, items: Iterable, workers: int, *args, setup: Callable | None = None) -> Iterator:
    """``function(item, *args)`` for each item, yielded in the items' order.

    With ``workers`` > 1 the calls run in that many forked processes, which
    inherit ``function`` and ``args`` (models, configs) instead of receiving
    them per item; only items and results cross between processes. At most
    ``2 * workers`` items are in flight, so a long stream is never read far
    ahead of its results and memory stays flat. Results equal those of one
    worker whenever ``function`` depends on its arguments alone. ``setup()``,
    where given, runs once in each worker process before its first item
    (e.g. a thread limit for the process's life); it is not called with one
    worker, where the caller's own settings hold.
    """
    if workers <= 1:
        for item in items:
            yield function(item, *args)
        return
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_set_task, initargs=(function, args, setup))
    pending = deque()
    try:
        for item in items:
            pending.append(pool.apply_async(_run_task, (item,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    except BaseException:
        # stopped (an error, a signal, the caller closing this generator): the workers' frames are not wanted,
        # and waiting for them could take as long as the run. Pool.terminate also empties the task pipe,
        # which a busy worker would otherwise leave full and the parent blocked on at exit
        pool.terminate()
        pool.join()
        raise
    pool.close()
    pool.join()


__all__ = ["ordered_map"]
