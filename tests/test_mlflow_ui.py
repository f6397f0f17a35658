"""The MLflow UI in a real browser: the experiment opens on its runs, a run shows its Dice, an overlay loads.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them);
without them the test is skipped here and fails in CI. With
``UPDATE_SCREENSHOTS=1`` it also saves its screenshots to ``experiments/figures/``.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from src.errors import LabError
from src.run import run_and_log
from src.ui import main

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "experiments" / "figures"


def browser_or_skip():
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        message = f"no {', '.join(missing)} (Debian: apt-get install chromium chromium-driver; .ci/run does this)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def serving(tracking_uri: str):
    """``mlflow server`` over ``tracking_uri`` on a free loopback port, for as long as the block runs; yields its
    address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
                               tracking_uri, "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not come up"
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def mlflow_server(make_cfg, tmp_path):
    """A store with one finished run and ``mlflow server`` over it on a free loopback port.

    Yields the server's address, the run, and the file name of one of its overlays.
    """
    browser_or_skip()
    cfg = make_cfg("data.n_images=2")
    _, run_id = run_and_log(cfg)
    with serving(cfg.logger.tracking_uri) as url:
        import mlflow
        client = mlflow.MlflowClient(cfg.logger.tracking_uri)
        overlay = client.list_artifacts(run_id, "overlays")[0].path.rsplit("/", 1)[-1]
        yield url, client.get_run(run_id), overlay


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver, text, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: text in d.find_element("tag name", "body").text)


def screenshot(driver, tmp_path, name):
    path = tmp_path / name
    driver.save_screenshot(str(path))
    if os.environ.get("UPDATE_SCREENSHOTS"):
        FIGURES.mkdir(exist_ok=True)
        shutil.copy(path, FIGURES / name)
    return path


def click_text(driver, text, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.5).until(
        lambda d: d.find_elements("xpath", f"//*[text()='{text}']"))[0].click()


def close_assistant(driver):
    """Fold MLflow's assistant panel away, so screenshots show the lab's numbers."""
    for button in driver.find_elements("css selector", "button[aria-label*='lose']"):
        if button.is_displayed():
            button.click()
            return


@pytest.mark.slow
def test_the_ui_opens_on_the_runs_and_shows_dice_and_an_overlay(mlflow_server, browser, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    from src.ui import experiment_address

    url, run, overlay = mlflow_server
    experiment, run_id = run.info.experiment_id, run.info.run_id
    # the address `make ui` prints opens the experiment on its runs table, the run under its name
    host, port = url.removeprefix("http://").split(":")
    browser.get(experiment_address(host, int(port), experiment))
    wait_for_text(browser, run.info.run_name)
    assert "1 matching run" in browser.find_element("tag name", "body").text
    close_assistant(browser)
    screenshot(browser, tmp_path, "mlflow_runs.png")
    # the run page shows Dice, and the glossary says what the diagnostics beside it mean
    browser.get(f"{url}/#/experiments/{experiment}/runs/{run_id}?workflowType=machine_learning")
    wait_for_text(browser, "dice_mean")
    wait_for_text(browser, "oracle_dice_mean: a diagnostic, not a result")
    close_assistant(browser)
    screenshot(browser, tmp_path, "mlflow_run.png")
    # an overlay opened in the artifact viewer loads as a readable picture
    browser.get(f"{url}/#/experiments/{experiment}/runs/{run_id}/artifacts?workflowType=machine_learning")
    click_text(browser, "overlays")
    click_text(browser, overlay)
    width = WebDriverWait(browser, 60, poll_frequency=0.5).until(lambda d: d.execute_script(
        "const img = [...document.images].find(i => i.complete && i.naturalWidth >= 300);"
        "return img ? img.naturalWidth : null;"))
    assert width >= 960
    close_assistant(browser)
    screenshot(browser, tmp_path, "mlflow_overlay.png")


def test_make_ui_on_a_taken_port_is_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
        proc = subprocess.run([sys.executable, "-m", "src.ui", "--port", str(port)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: --port={port} on 127.0.0.1 is not free (Address already in use); choose another, e.g. "
        f"make ui PORT={port + 1}"]


def test_a_token_in_a_tracking_server_address_is_never_printed(make_cfg, tmp_path, capfd):
    """MLflow prints a run's address, token and all, to stdout when it ends a run on a server."""
    with serving(f"sqlite:///{tmp_path / 'served.db'}") as url:
        address = url.replace("http://", "http://s3cretTOKEN@")
        summary, run_id = run_and_log(make_cfg("data.n_images=2", "logger.log_images=false",
                                               f"logger.tracking_uri={address}"))
    out, err = capfd.readouterr()
    assert run_id and summary["n_frames"] == 2
    assert "s3cretTOKEN" not in out + err


@pytest.mark.parametrize("port", [0, -1, 70000])
def test_a_port_outside_1_to_65535_is_one_line(port):
    with pytest.raises(LabError, match=rf"^--port={port} is out of range; give a port from 1 to 65535$"):
        main(["--port", str(port)])


def test_the_store_reaches_mlflow_through_the_environment_not_the_process_list(monkeypatch, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    started = []
    monkeypatch.setattr("src.ui.os.execve", lambda path, argv, env: started.append((argv, env)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    main(["--port", str(port)])
    ((argv, env),) = started
    assert argv[1:] == ["ui", "--host", "127.0.0.1", "--port", str(port)]
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri
