"""``python -m src.ui [--port 5000] [--host 127.0.0.1] [overrides]``: the MLflow UI over the lab's store.

Checks the port first (one line if it is taken), then prints the address
that opens the experiment on its runs table and starts ``mlflow ui`` on the
store that ``logger.tracking_uri`` (or ``MLFLOW_TRACKING_URI``) names.
MLflow 3 opens experiments on its GenAI overview unless the page asks for
the model-training view (``workflowType=machine_learning``), which the
printed address does; the browser remembers the choice.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from pathlib import Path

from src.compose import build_tracker, load_config
from src.errors import LabError
from src.urls import redact


def check_port(host: str, port: int) -> None:
    """Raise LabError if ``host:port`` cannot be listened on: a port outside 1-65535, a host that does not
    resolve or is not this machine's, or a port in use."""
    # port 0 would listen on a port the printed address does not name
    if not 1 <= port <= 65535:
        raise LabError(f"--port={port} is out of range; give a port from 1 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise LabError(f"--host={host} cannot be resolved ({exc.strerror}); give a name or address of this "
                       "machine, e.g. 127.0.0.1") from None
    with socket.socket(family, kind, proto) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise LabError(f"--port={port} on {host} is not free ({exc.strerror}); choose another, e.g. "
                               f"make ui PORT={port + 1}") from None
            raise LabError(f"--host={host} cannot be listened on ({exc.strerror}); give an address of this "
                           "machine, e.g. 127.0.0.1") from None


def experiment_address(host: str, port: int, experiment_id: str) -> str:
    shown = f"[{host}]" if ":" in host else host  # an IPv6 address in a URL
    return f"http://{shown}:{port}/#/experiments/{experiment_id}?workflowType=machine_learning"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--host", default="127.0.0.1")
    args, overrides = parser.parse_known_args(argv)
    check_port(args.host, args.port)
    tracker = build_tracker(load_config(overrides))
    print(f"MLflow UI for {redact(tracker.tracking_uri)}: "
          f"{experiment_address(args.host, args.port, tracker.experiment_id())}", flush=True)
    mlflow = Path(sys.executable).with_name("mlflow")
    # the store through the environment, not the arguments, which any user of the machine can list with ps
    os.execve(mlflow, [str(mlflow), "ui", "--host", args.host, "--port", str(args.port)],
              {**os.environ, "MLFLOW_BACKEND_STORE_URI": tracker.tracking_uri})


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except LabError as exc:
        sys.exit(redact(f"error: {exc}"))
