"""`make dev` as the README runs it: a steady client sees no failure, Ctrl-C frees both
ports, every accepted event is once in raw/ and once in the CSV parts; busy ports fail fast."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dev_client import check_stored, steady
from scripts.dev import busy_ports_message, port_in_use
from tests.conftest import REPO_ROOT, free_port


def make_dev(port: int, demo_port: int, data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "ALLOWED_"))}
    env["ANALYTICS_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        ["make", "dev", "HOST=127.0.0.1", f"PORT={port}", f"DEMO_PORT={demo_port}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives it
    )


class Output:
    """The lines a process prints, read in a thread so it never blocks on a full pipe."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        self._thread = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self._thread.start()

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, process: subprocess.Popen[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not re.search(pattern, self.text(), re.M):
            assert process.poll() is None, f"make dev exited {process.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no {pattern!r} in {seconds} s:\n{self.text()}"
            time.sleep(0.1)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Inside the project, like the README's ./analytics_data: a reloader watching the
    # project would restart the server on every write (the bug this guards against).
    build = REPO_ROOT / "build"
    build.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="make-dev-test-", dir=build))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # other things may be in build/
        build.rmdir()


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_make_dev_serves_a_steady_client_without_a_failure_and_ctrl_c_frees_both_ports(
    data_dir: Path,
) -> None:
    port, demo_port = free_port(), free_port()
    process = make_dev(port, demo_port, data_dir)
    output = Output(process)
    try:
        output.wait_for(r"^demo page: ", process, 180)  # a first run builds the client
        assert f"http://127.0.0.1:{demo_port}/demo/?api=http://127.0.0.1:{port}/events" in (
            output.text()
        )
        # The page knows its API without ?api=, from / (redirected) and from /demo/ alike.
        api_meta = f'<meta name="owned-analytics-api" content="http://127.0.0.1:{port}/events">'
        for path in ("/", "/demo/"):
            with urllib.request.urlopen(f"http://127.0.0.1:{demo_port}{path}", timeout=5) as page:
                html = page.read().decode()
            assert "OwnedAnalytics" in html and api_meta in html
        run = steady(f"http://127.0.0.1:{port}", 8, interval=0.2, burst_every=3, burst=8)
        assert run.failures == [], output.text()
        assert run.posts >= 50 and len(run.accepted) == run.posts * 5 + 2 * 8 * 20
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        process.wait(60)
    finally:
        stop(process)
    assert "Traceback" not in output.text(), output.text()
    assert f"ports {port} and {demo_port} are free" in output.text()
    assert not port_in_use("127.0.0.1", port) and not port_in_use("127.0.0.1", demo_port)
    # The last writes were converted on the way out.
    assert check_stored(run, data_dir) == []


@pytest.mark.parametrize(
    ("busy", "variable", "what"), [(0, "PORT", "API"), (1, "DEMO_PORT", "demo")]
)
def test_a_busy_port_is_one_line_naming_it_and_the_variable_to_change(
    tmp_path: Path, busy: int, variable: str, what: str
) -> None:
    ports = [free_port(), free_port()]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", ports[busy]))
        holder.listen()
        started = time.monotonic()
        process = make_dev(ports[0], ports[1], tmp_path)
        try:
            out, _ = process.communicate(timeout=60)
        finally:
            stop(process)
    assert process.returncode != 0
    assert time.monotonic() - started < 30  # before any build
    [line] = [line for line in out.splitlines() if line.startswith("make dev:")]
    assert f"port {ports[busy]} (the {what}" in line
    assert re.search(rf"run make dev {variable}=\d+$", line), line
    assert "Traceback" not in out and "npm" not in out


def test_both_ports_busy_are_named_in_one_line() -> None:
    ports = [free_port(), free_port()]
    holders = [socket.socket(), socket.socket()]
    try:
        for holder, port in zip(holders, ports, strict=True):
            holder.bind(("127.0.0.1", port))
            holder.listen()
        message = busy_ports_message(
            "127.0.0.1", [(ports[0], "PORT", "the API"), (ports[1], "DEMO_PORT", "the demo page")]
        )
    finally:
        for holder in holders:
            holder.close()
    assert message is not None
    assert f"ports {ports[0]} (the API) and {ports[1]} (the demo page) are in use" in message
    assert re.search(r"run make dev PORT=\d+ DEMO_PORT=\d+$", message)


def test_reload_watches_the_apps_code_and_settings_never_the_data() -> None:
    from scripts.dev import _mtimes

    watched = set(_mtimes())
    assert {"app.py", ".chalice/config.json", "chalicelib/dev/loop.py"} <= watched
    assert "chalicelib/ingest/schema/events.schema.json" in watched
    assert not [p for p in watched if p.startswith(("analytics_data", ".venv", "client", "build"))]


def test_a_port_taken_after_the_check_is_still_one_line(tmp_path: Path) -> None:
    """The race: free when checked, taken when chalice binds; and the demo port too."""
    import sys

    ports = [free_port(), free_port()]
    code = "import sys; from scripts.dev import DevServers; "
    code += f"sys.exit(DevServers('127.0.0.1', {ports[0]}, {ports[1]}, False).run())"
    for busy in (0, 1):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", ports[busy]))
            holder.listen()
            done = subprocess.run(
                [sys.executable, "-c", code],
                cwd=REPO_ROOT,
                env={**os.environ, "ANALYTICS_DATA_DIR": str(tmp_path)},
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert done.returncode == 1
        [line] = [x for x in done.stderr.splitlines() if x.startswith("make dev:")]
        variable = ("PORT", "DEMO_PORT")[busy]
        assert str(ports[busy]) in line and re.search(rf"make dev {variable}=\d+$", line), line
        assert not port_in_use("127.0.0.1", ports[1 - busy])  # nothing left behind


@pytest.mark.parametrize("target", ["dev", "test"])
def test_without_python_312_or_313_make_says_so_in_one_line(tmp_path: Path, target: str) -> None:
    """No 3.12/3.13 on PATH nor under pyenv: one message, no `command not found` after it."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    venv = tmp_path / "venv"  # never the project's: this make must not find a Python there
    done = subprocess.run(
        ["make", "--no-print-directory", target, f"VENV={venv}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0
    assert len(output.splitlines()) == 1, output
    assert "Python 3.13 or 3.12 is required" in output and "pyenv install 3.13" in output
    assert "command not found" not in output and "Error 127" not in output
