"""`python -m exporter export` killed mid-run (SIGKILL, SIGTERM): its worker processes exit
within seconds, and no temporary file is left in the output folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO_ROOT

SOURCES = 6
LINES = 20_000


def gone(process: psutil.Process) -> bool:
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A day of raw events large enough that the export is still reading when killed."""
    root = tmp_path_factory.mktemp("day")
    for source in range(SOURCES):
        path = root / "raw" / "2026" / "11" / "28" / f"{source:02d}" / f"e-{source}.ndjson"
        path.parent.mkdir(parents=True)
        with path.open("w") as handle:
            for n in range(LINES):
                line: dict[str, object] = {"sessionId": f"s-{n % 97}", "eventId": f"{source}-{n}"}
                line["metricAttributes"] = {"a": n, "b": "x" * 40, "c": {"d": n % 7}}
                handle.write(json.dumps(line) + "\n")
    return root


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_export_leaves_no_process_and_no_temporary_file(
    day: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "exporter", "export", "--date", "2026-11-28"]
    command += ["--source", str(day), "--out", str(out / "day.csv"), "--jobs", "2"]
    export = subprocess.Popen(command, cwd=REPO_ROOT, stderr=subprocess.DEVNULL)
    parent = psutil.Process(export.pid)
    deadline = time.monotonic() + 60
    children: list[psutil.Process] = []
    while len(children) < 3 and time.monotonic() < deadline:  # two workers, one tracker
        time.sleep(0.05)
        children = parent.children(recursive=True)
    assert len(children) >= 2 and export.poll() is None, "the export ended before the kill"
    time.sleep(0.5)  # the workers are reading
    export.send_signal(sig)
    export.wait(timeout=30)
    waited = time.monotonic()
    while not all(gone(child) for child in children) and time.monotonic() - waited < 10:
        time.sleep(0.1)
    left = [child.pid for child in children if not gone(child)]
    for pid in left:  # do not leave them to the next test
        psutil.Process(pid).kill()
    assert left == [], "worker processes outlived the export by 10 s"
    assert list(out.iterdir()) == []  # no CSV (it did not finish) and no .tmp- file
