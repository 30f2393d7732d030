"""chalicelib/jobs.py: what the conversion jobs convert, and the spools they leave behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.config import Settings
from chalicelib.jobs import convert_raw_object, day_before
from chalicelib.storage.local import LocalStore
from tests.test_handlers import stored_line


def test_objects_outside_the_raw_prefix_are_never_converted(tmp_path: Path) -> None:
    from chalicelib.layout import NotARawObject

    with pytest.raises(NotARawObject):
        convert_raw_object(LocalStore(tmp_path), "csv/parts/x.csv", Settings())


def test_objects_differing_only_by_extension_get_distinct_parts(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    keys = [f"raw/2026/11/27/10/x{ext}" for ext in (".gz", ".ndjson", ".jsonl", ".json")]
    for key in keys:
        with store.open_write(key) as handle:
            handle.write(stored_line(eventId=key))
    parts = {convert_raw_object(store, key, Settings()).output for key in keys}
    assert len(parts) == 4
    assert sorted(p.rsplit("/", 1)[1] for p in parts) == [
        "x.csv",
        "x.json.csv",
        "x.jsonl.csv",
        "x.ndjson.csv",
    ]


@pytest.mark.parametrize(
    ("fired", "day"),
    [
        ("2026-11-28T00:15:00Z", "2026-11-27"),
        ("2026-03-01T00:15:00Z", "2026-02-28"),
        ("2026-01-01T00:15:00+00:00", "2025-12-31"),
    ],
)
def test_schedule_builds_the_previous_utc_day(fired: str, day: str) -> None:
    assert day_before(fired).isoformat() == day


def test_in_lambda_every_spool_left_by_a_timed_out_invocation_is_removed(tmp_path: Path) -> None:
    from chalicelib.jobs import remove_stale_spools

    (tmp_path / "csv-spool-1-abc").mkdir()
    (tmp_path / "csv-spool-1-abc" / "rows-0.csv").write_text("x")
    (tmp_path / f"csv-spool-{os.getpid()}-def").mkdir()  # pids restart with the sandbox
    (tmp_path / "keep-me").mkdir()
    assert remove_stale_spools(str(tmp_path), in_lambda=True) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep-me"]


def test_outside_lambda_only_spools_of_dead_processes_are_removed(tmp_path: Path) -> None:
    from chalicelib.jobs import remove_stale_spools

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine = tmp_path / f"csv-spool-{os.getpid()}-live"
    gone = tmp_path / f"csv-spool-{dead.pid}-gone"
    unknown = tmp_path / "csv-spool-abc"  # not ours to judge
    for folder in (mine, gone, unknown):
        folder.mkdir()
    assert remove_stale_spools(str(tmp_path), in_lambda=False) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, unknown.name])


def test_a_running_export_keeps_its_spool_while_a_handler_cleans_up(tmp_path: Path) -> None:
    """A handler's cleanup leaves the spool of an export running beside it alone."""
    import io

    from chalicelib.csv.convert import convert
    from chalicelib.jobs import remove_stale_spools
    from tests.csv_helpers import ndjson, source

    removed: list[int] = []

    def clean_up_midway(_name: str) -> None:
        removed.append(remove_stale_spools(str(tmp_path), in_lambda=False))

    out = io.BytesIO()
    records = ndjson(*({"eventId": f"e{i}", "sessionId": "s"} for i in range(10)))
    report = convert(
        [source("a", records), source("b", records)],
        out,
        spool_dir=str(tmp_path),
        on_source_done=clean_up_midway,
    )
    assert removed == [0, 0] and report.rows == 10 and report.duplicates == 10
