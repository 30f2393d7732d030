"""A column explosion, end to end: batches that are valid and inside every limit
but carry 100 new attribute keys per event go through the route, then through the per-object
and the daily conversion in a child process, whose peak RSS must stay under 200 MB with at
most the column budget in the header and every value present."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from bench.measure import convert_in_child
from chalicelib.csv.columns import OVERFLOW_COLUMN
from chalicelib.sinks import LocalDirectorySink
from tests.conftest import route_to
from tests.factories import batch, event

POSTS = 4
EVENTS = 500
KEYS = 100
PEAK_RSS_LIMIT_MB = 200


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
    route_to(monkeypatch, LocalDirectorySink(tmp_path))
    with Client(app_module.app, stage_name="dev") as client:
        for post in range(POSTS):
            raw = json.dumps(explosion_batch(post), separators=(",", ":")).encode()
            assert len(raw) < app_module.SETTINGS.limits.max_body_bytes
            answer = client.http.post("/events", headers={"Content-Type": "text/plain"}, body=raw)
            assert answer.json_body == {"accepted": EVENTS, "rejected": []}
    yield tmp_path


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
    part = convert_in_child(data_dir, "part", key)
    daily = convert_in_child(data_dir, "daily", "-".join(key.split("/")[1:4]))
    budget = app_module.SETTINGS.max_csv_columns
    for measured in (part, daily):
        assert check_every_value(measured.output, budget) == POSTS * EVENTS
        assert measured.peak_rss_mb < PEAK_RSS_LIMIT_MB, measured
