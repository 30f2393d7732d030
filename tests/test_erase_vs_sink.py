"""`python -m exporter erase` on a folder the local sink is appending to: every append the
sink acknowledged is still there afterwards (erase rewrites a file under the sink's lock)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from chalicelib.erase import run as erase_module
from exporter.cli import cli
from tests.conftest import REPO_ROOT

WRITER = """
import json, sys
from datetime import UTC, datetime
from chalicelib.sinks import LocalDirectorySink

root, count = sys.argv[1], int(sys.argv[2])
minute = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
sink = LocalDirectorySink(root, now=lambda: minute)  # one file, as within one minute
for n in range(count):
    session = "gone" if n % 10 == 0 else "kept"
    line = {"sessionId": session, "eventId": f"e-{n}", "metricName": "m", "pad": "x" * 200}
    sink.write([json.dumps(line).encode() + b"\\n"])  # returned: acknowledged
    print(n, flush=True)
"""


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(erase_module, "SCRYPT_COST", {"n": 2, "r": 1, "p": 1})


def test_erasing_while_the_sink_appends_loses_no_acknowledged_line(tmp_path: Path) -> None:
    count = 4_000
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(count)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    writer.stdout.readline()  # the file exists
    args = ["erase", "--session-id", "gone", "--from", "2026-11-28", "--source", str(tmp_path)]
    runs = 0
    deadline = time.monotonic() + 120
    while writer.poll() is None and time.monotonic() < deadline:
        result = CliRunner().invoke(cli, [*args, "--jobs", "1"])
        assert result.exit_code == 0, result.output
        runs += 1
    acknowledged = [int(line) for line in writer.stdout.read().split()]
    assert writer.wait(timeout=60) == 0 and runs >= 2
    assert acknowledged[-1] == count - 1
    [path] = tmp_path.glob("raw/**/*.ndjson")
    lines = path.read_text().splitlines()
    stored = [json.loads(line) for line in lines if line.startswith("{") and line.endswith("}")]
    kept = {line["eventId"] for line in stored if line["sessionId"] == "kept"}
    missing = [n for n in range(count) if n % 10 and f"e-{n}" not in kept]
    assert missing == [], f"{len(missing)} acknowledged append(s) lost over {runs} erasures"
    assert len(stored) == len(lines), "a line was cut or glued to another"
    assert len(stored) == len(kept) + sum(line["sessionId"] == "gone" for line in stored)
