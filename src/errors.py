"""The project's one error type for bad input."""


class LabError(ValueError):
    """Bad input: a config value, a path or a file the run cannot use.

    The message is one line that names the option, the value and what is
    allowed. Raised before any work starts wherever the problem can be seen
    that early.
    """


def check_choice(option: str, value, allowed) -> None:
    """Raise LabError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise LabError(f"{option}={value!r} is not allowed; choose one of {sorted(allowed)}")


def check_range(option: str, value, low=None, high=None, *, integer: bool = False,
                low_open: bool = False) -> None:
    """Raise LabError unless ``low <= value <= high`` (``low < value`` with ``low_open``)."""
    if integer and (isinstance(value, bool) or not isinstance(value, int)):
        raise LabError(f"{option}={value!r} must be an integer")
    if not integer and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise LabError(f"{option}={value!r} must be a number")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        bracket = "(" if low_open else "["
        raise LabError(f"{option}={value!r} is out of range; allowed {bracket}{lo}, {hi}]")
