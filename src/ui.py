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
import os
import socket
import sys
from pathlib import Path

from src.compose import build_tracker, load_config
from src.errors import LabError
from src.urls import redact


def check_port(host: str, port: int) -> None:
    """Raise LabError if ``host:port`` cannot be listened on."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise LabError(f"--port={port} on {host} is not free ({exc.strerror}); choose another, e.g. "
                           f"make ui PORT={port + 1}") from None


def experiment_address(host: str, port: int, experiment_id: str) -> str:
    return f"http://{host}:{port}/#/experiments/{experiment_id}?workflowType=machine_learning"


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
    os.execv(mlflow, [str(mlflow), "ui", "--backend-store-uri", tracker.tracking_uri, "--host", args.host,
                      "--port", str(args.port)])


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except LabError as exc:
        sys.exit(redact(f"error: {exc}"))
