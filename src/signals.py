"""Ctrl-C and SIGTERM end a command the same way: its runs KILLED, one line on the terminal.

Schedulers, ``timeout`` and container stops send SIGTERM. Turning it into
``Terminated``, a ``KeyboardInterrupt``, lets every ``except
KeyboardInterrupt`` that ends an MLflow run KILLED (or a sweep's parent run)
handle both signals alike. An interrupt that lands inside library code can
surface as that library's own error (a database driver's, numpy's); the
signal is remembered, so such an error still counts as a stop.
"""

from __future__ import annotations

import contextlib
import signal
import sys

from src.urls import redact

_received: list[int] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt."""


def _on_signal(signum, frame):
    _received.append(signum)
    raise Terminated("SIGTERM") if signum == signal.SIGTERM else KeyboardInterrupt()


def stop_requested() -> int | None:
    """The stop signal this process received under ``stop_signals`` (SIGINT or SIGTERM), or None."""
    return _received[0] if _received else None


def _quiet_dropped_stops(unraisable) -> None:
    """Python's hook for exceptions it cannot raise, silent for our stops: ``raise_if_stopped`` raises them."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)


def raise_if_stopped() -> None:
    """Raise the stop this process received, if any.

    The handler raises at once, but a signal that lands in a garbage
    collection callback or a ``__del__`` has its exception printed and
    dropped by Python, and the command would carry on. Loops that can run
    long (waiting for workers, iterating a model) call this each round.
    """
    stop = stop_requested()
    if stop is not None:
        raise Terminated("SIGTERM") if stop == signal.SIGTERM else KeyboardInterrupt()


def interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a stop: a KeyboardInterrupt, caused by one, or raised after a stop signal."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return stop_requested() is not None


def as_interrupt(exc: BaseException) -> BaseException:
    """``exc``, or the KeyboardInterrupt it stands for when it arose from a stop signal."""
    if isinstance(exc, KeyboardInterrupt) or not interrupted(exc):
        return exc
    return Terminated("SIGTERM") if stop_requested() == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def stops_as_interrupts():
    """Re-raise an error that a stop signal caused as the KeyboardInterrupt it stands for."""
    try:
        yield
    except Exception as exc:
        stop = as_interrupt(exc)
        if stop is exc:
            raise
        raise stop from None


@contextlib.contextmanager
def stop_signals(command: str):
    """Run an entry point so that Ctrl-C and SIGTERM end it with one line and exit status 130 / 143.

    Parameters
    ----------
    command : str
        What is running, for the message (``"src.run"``).
    """
    _received.clear()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_dropped_stops
    try:
        yield
    except KeyboardInterrupt as exc:
        terminated = isinstance(exc, Terminated) or stop_requested() == signal.SIGTERM
        name, status = ("SIGTERM", 128 + signal.SIGTERM) if terminated else ("Ctrl-C", 128 + signal.SIGINT)
        print(redact(f"{command}: stopped by {name}; its MLflow runs were ended KILLED"), file=sys.stderr)
        sys.exit(status)
    finally:
        sys.unraisablehook = previous_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["Terminated", "as_interrupt", "interrupted", "raise_if_stopped", "stop_requested", "stop_signals",
           "stops_as_interrupts"]
