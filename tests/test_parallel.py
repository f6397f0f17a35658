import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from src.parallel import WORKER_NICENESS, WorkerDied, ordered_map
from src.signals import Terminated, raise_if_stopped, stop_signals


def scaled(x, factor):
    return x * factor


def uneven(x):
    time.sleep(0.02 * (x % 3))        # later items often finish first
    return x


def fails_on_five(x):
    if x == 5:
        raise ValueError(f"item {x} is bad")
    return x


def dies_on_three(x):
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def frame(x):
    return np.full((540, 960, 3), x, np.uint8)     # larger than a pipe's buffer


def niceness(_):
    return os.nice(0)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:          # a zombie is dead too
        return stat.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_come_in_the_items_order(workers):
    assert list(ordered_map(uneven, range(30), workers)) == list(range(30))
    assert list(ordered_map(scaled, range(5), workers, 3)) == [0, 3, 6, 9, 12]


def slow(x):
    time.sleep(0.5)
    return x


def test_workers_yield_the_cores_to_the_main_process():
    own = os.nice(0)
    assert list(ordered_map(niceness, range(4), 2)) == [min(own + WORKER_NICENESS, 19)] * 4
    assert os.nice(0) == own
    assert list(ordered_map(niceness, range(2), 1)) == [own] * 2    # one worker is this process


def test_items_are_read_ahead_while_the_workers_are_busy():
    read = []

    def items():
        for item in range(10):
            read.append(time.monotonic())
            yield item

    stream = ordered_map(slow, items(), 2)
    assert next(stream) == 0
    # items 2 and 3 were read (a stream decodes its frames here) while the workers slept on 0 and 1, not after;
    # never more than the four in flight and two ahead
    assert read[3] - read[1] < 0.25
    assert 4 <= len(read) <= 6
    assert list(stream) == list(range(1, 10))


def test_a_workers_error_is_raised_with_its_traceback():
    with pytest.raises(ValueError, match="item 5 is bad") as info:
        list(ordered_map(fails_on_five, range(10), 2))
    assert "in a worker process" in info.value.__notes__[0] and "fails_on_five" in info.value.__notes__[0]


def test_a_worker_that_dies_fails_with_one_line():
    with pytest.raises(WorkerDied, match=r"ended without its result \(exit code -9\)"):
        list(ordered_map(dies_on_three, range(10), 2))


def test_closing_the_stream_ends_the_workers_at_once():
    import multiprocessing

    stream = ordered_map(frame, range(100), 2)
    assert next(stream).shape == (540, 960, 3)
    start = time.monotonic()
    stream.close()
    assert time.monotonic() - start < 5 and not multiprocessing.active_children()


def test_workers_die_with_a_killed_main_process(tmp_path):
    script = textwrap.dedent("""
        import multiprocessing, sys, time
        from src.parallel import ordered_map
        def long(x):
            time.sleep(600)
        stream = ordered_map(long, range(4), 2)
        def report():
            time.sleep(1)
            print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
        import threading
        threading.Thread(target=report, daemon=True).start()
        next(stream)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)))
    workers = [int(pid) for pid in proc.stdout.readline().split()]
    assert len(workers) == 2 and all(alive(pid) for pid in workers)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


class DropsItsSignal:
    """Delivers SIGTERM inside ``__del__``, where Python prints the handler's exception and drops it."""

    def __del__(self):
        signal.raise_signal(signal.SIGTERM)


def test_a_stop_python_dropped_still_ends_the_wait_for_workers(capsys):
    with pytest.raises(SystemExit) as info:
        with stop_signals("test"):
            stream = ordered_map(time.sleep, [0, 30, 30, 30], 2)
            next(stream)
            DropsItsSignal()                      # collected at once: the Terminated it raises is dropped
            start = time.monotonic()
            next(stream)
    assert info.value.code == 128 + signal.SIGTERM and time.monotonic() - start < 5
    # the dropped exception is not printed: the one line is all
    assert capsys.readouterr().err.strip() == "test: stopped by SIGTERM; its MLflow runs were ended KILLED"


def test_raise_if_stopped_is_quiet_until_a_stop_arrives():
    with pytest.raises(SystemExit):
        with stop_signals("test"):
            raise_if_stopped()
            DropsItsSignal()
            with pytest.raises(Terminated):
                raise_if_stopped()
            raise Terminated("SIGTERM")
    with stop_signals("test"):                    # a new command starts without the old stop
        raise_if_stopped()


@pytest.mark.parametrize(("exported", "expected"), [(None, "20"), ("12", "12")])
def test_openblas_idle_threads_are_told_to_sleep_soon_before_numpy_loads(exported, expected):
    # OpenBLAS reads the timeout when it loads: importing the package must set it before numpy comes in,
    # and leave a value the user exported alone
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_THREAD_TIMEOUT"}
    if exported is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = exported
    code = "import os, sys, src; print('numpy' in sys.modules, os.environ['OPENBLAS_THREAD_TIMEOUT'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.stdout.split() == ["False", expected]
