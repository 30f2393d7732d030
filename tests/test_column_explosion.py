"""The review's column explosion, end to end: batches that are valid and inside every limit
but carry 100 new attribute keys per event go through the route, then through the per-object
and the daily conversion in a child process, whose peak RSS must stay under 200 MB with at
most the column budget in the header and every value present."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.collect import Collector
from chalicelib.csv.columns import OVERFLOW_COLUMN
from chalicelib.sinks import LocalDirectorySink
from chalicelib.validate import BatchValidator
from tests.conftest import REPO_ROOT
from tests.factories import batch, event

POSTS = 4
EVENTS = 500
KEYS = 100
PEAK_RSS_LIMIT_MB = 200

CONVERT = """
import sys
from datetime import date
from chalicelib.config import Settings
from chalicelib.jobs import build_daily_csv, convert_raw_object
from chalicelib.storage import LocalStore
store = LocalStore(sys.argv[1])
if sys.argv[2] == "daily":
    report = build_daily_csv(store, date.fromisoformat(sys.argv[3]), Settings())
else:
    report = convert_raw_object(store, sys.argv[3], Settings())
print(report.output)
# Peak RSS of this program: VmHWM is per address space, so unlike ru_maxrss it does not
# count the (large) test process this one was forked from.
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def explosion_batch(post: int) -> dict[str, Any]:
    events = [
        event(
            eventId=f"p{post}-e{n}",
            metricAttributes={f"k{post}_{n}_{i}": i for i in range(KEYS)},
        )
        for n in range(EVENTS)
    ]
    return batch(*events)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    sink = LocalDirectorySink(tmp_path)
    collector = Collector(
        BatchValidator(app_module.SETTINGS.limits), lambda: sink, app_module.app.log
    )
    monkeypatch.setattr(app_module, "collector", collector)
    with Client(app_module.app, stage_name="dev") as client:
        for post in range(POSTS):
            raw = json.dumps(explosion_batch(post), separators=(",", ":")).encode()
            assert len(raw) < app_module.SETTINGS.limits.max_body_bytes
            answer = client.http.post("/events", headers={"Content-Type": "text/plain"}, body=raw)
            assert answer.json_body == {"accepted": EVENTS, "rejected": []}
    yield tmp_path


def convert_in_child(data_dir: Path, mode: str, target: str) -> tuple[Path, float]:
    """Run one conversion in a fresh interpreter; its output and peak RSS in MB."""
    process = subprocess.Popen(
        [sys.executable, "-c", CONVERT, str(data_dir), mode, target],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
    )
    output, _ = process.communicate()
    assert process.returncode == 0
    path, peak_kib = output.decode().split()
    return Path(path), int(peak_kib) / 1024


def check_every_value(path: Path, budget: int) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames is not None and len(reader.fieldnames) <= budget
        rows = 0
        for row in reader:
            post, n = row["eventId"][1:].split("-e")
            cells = {k: v for k, v in row.items() if k.startswith("attr_") and v}
            cells.update(json.loads(row[OVERFLOW_COLUMN] or "{}"))
            assert cells == {f"attr_k{post}_{n}_{i}": str(i) for i in range(KEYS)}
            rows += 1
    return rows


def test_column_explosion_stays_in_budget_and_memory(data_dir: Path) -> None:
    [raw] = list((data_dir / "raw").rglob("*.ndjson"))
    key = raw.relative_to(data_dir).as_posix()
    part, part_rss = convert_in_child(data_dir, "part", key)
    day = "-".join(key.split("/")[1:4])
    daily, daily_rss = convert_in_child(data_dir, "daily", day)
    budget = app_module.SETTINGS.max_csv_columns
    assert check_every_value(part, budget) == POSTS * EVENTS
    assert check_every_value(daily, budget) == POSTS * EVENTS
    assert part_rss < PEAK_RSS_LIMIT_MB, part_rss
    assert daily_rss < PEAK_RSS_LIMIT_MB, daily_rss
