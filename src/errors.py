"""The project's one error type for bad input."""

from __future__ import annotations


class LabError(ValueError):
    """Bad input: a config value, a path or a file the run cannot use.

    The message is one line that names the option, the value and what is
    allowed. Raised before any work starts wherever the problem can be seen
    that early.

    A stage names only its own parameters: ``LabError("max_distance=-1 is out
    of range ...", key="max_distance")``. ``key`` says that the message starts
    with that parameter, so the composition layer (``src.compose``), which
    knows where the stage sits in the config, can put the path in front:
    ``postprocess.steps.field.max_distance=-1 is out of range ...``. A message
    without ``key`` is shown as it is. Hints later in a message name what to
    set on the command line (``data.recursive=true``).
    """

    def __init__(self, message: str, *, key: str | None = None):
        super().__init__(message)
        self.key = key

    def under(self, path: str) -> LabError:
        """This error with ``path`` in front of its key; unchanged when it names no key or ``path`` is empty."""
        if self.key is None or not path:
            return self
        return LabError(f"{path}.{self}", key=f"{path}.{self.key}")


def check_choice(option: str, value, allowed) -> None:
    """Raise LabError unless ``value`` is one of ``allowed`` (a bool only where ``allowed`` has bools: ``True == 1``
    in Python)."""
    if value not in allowed or isinstance(value, bool) != any(isinstance(a, bool) for a in allowed if a == value):
        raise LabError(f"{option}={value!r} is not allowed; choose one of {sorted(allowed)}", key=option)


def check_bool(option: str, value) -> None:
    """Raise LabError unless ``value`` is a bool: a string such as ``no`` would read as true."""
    if not isinstance(value, bool):
        raise LabError(f"{option}={value!r} must be true or false", key=option)


# the largest seed NumPy's and scikit-learn's generators take
MAX_SEED = 2 ** 32 - 1


def check_seed(option: str, value, *, span: int = 1) -> None:
    """Raise LabError unless ``value`` is a seed the random generators take, as are the ``span - 1`` seeds after
    it that a stage derives from it (seed, seed + 1, ...)."""
    check_range(option, value, 0, MAX_SEED - (span - 1), integer=True)


def check_range(option: str, value, low=None, high=None, *, integer: bool = False,
                low_open: bool = False) -> None:
    """Raise LabError unless ``low <= value <= high`` (``low < value`` with ``low_open``)."""
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise LabError(f"{option}={value!r} must be an integer", key=option)
    if not integer and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise LabError(f"{option}={value!r} must be a number", key=option)
    allowed = f"{'(' if low_open else '['}{'-inf' if low is None else low}, {'inf' if high is None else high}]"
    # NaN compares False with every bound, so it would pass the range test below
    if value != value:
        raise LabError(f"{option}=nan is not a number; allowed {allowed}", key=option)
    # no option takes an infinite value: a weight or radius of inf makes the features or distances inf
    if value in (float("inf"), float("-inf")):
        raise LabError(f"{option}={value!r} is not finite; allowed {allowed} (finite)", key=option)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        raise LabError(f"{option}={value!r} is out of range; allowed {allowed}", key=option)
