"""The delivery report: gaps, duplicates, the rate and where gaps sit, from raw records."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from click.testing import CliRunner

import app as app_module
from chalicelib.delivery.measure import MAX_LISTED_GAP_RUNS, GapRun, measure_delivery
from chalicelib.delivery.records import RecordSpool
from chalicelib.storage.local import LocalStore
from chalicelib.storage.s3 import S3Store
from exporter.cli import cli

DAY = date(2026, 12, 7)


def record(session: str, seq: Any, at: str = "10:00:00.000", **fields: Any) -> dict[str, Any]:
    return {
        "eventId": f"{session}-{seq}",
        "sessionId": session,
        "timestamp": 1,
        "metricName": "ContentPageLoad",
        "seq": seq,
        "serverTimestamp": (at if "T" in at else f"2026-12-07T{at}") + "Z",
        "uaBrowser": "Chrome",
        "uaDeviceType": "desktop",
        **fields,
    }


def write_raw(
    root: Path, key: str, *records: dict[str, Any], lines: tuple[bytes, ...] = ()
) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"".join(json.dumps(r).encode() + b"\n" for r in records) + b"".join(lines)
    path.write_bytes(gzip.compress(body) if key.endswith(".gz") else body)


def sends(session: str, *batches: tuple[str, list[int]], **fields: Any) -> list[dict[str, Any]]:
    """A session's records: each batch arrives at its time with its numbers."""
    return [record(session, seq, at, **fields) for at, numbers in batches for seq in numbers]


def test_counts_gaps_duplicates_and_the_rate(tmp_path: Path) -> None:
    write_raw(
        tmp_path,
        "raw/2026/12/07/10/a.ndjson",
        *sends("s1", ("10:00:00.000", [1, 2]), ("10:00:05.000", [4, 5]), ("10:01:00.000", [6])),
        record("s1", 2),  # the same event again: a duplicate, not a second event
        *sends("s2", ("10:00:00.000", [1, 2, 3])),
        record("s3", None, eventId="old"),  # an old client's event: no number
    )
    report = measure_delivery(LocalStore(tmp_path), [DAY])
    day = report.days[0]
    assert (day.total.sessions, day.total.received, day.total.gaps) == (2, 8, 1)
    assert (day.total.duplicates, day.total.unnumbered) == (1, 1)
    assert day.total.rate == pytest.approx(8 / 9)
    assert day.gap_runs == [GapRun("s1", 3, 3, at_end=False)]
    assert report.as_dict()["rate"] == pytest.approx(8 / 9, abs=1e-6)


def test_a_gap_before_the_final_send_is_at_the_end(tmp_path: Path) -> None:
    # 1-3 by fetch; 4-5 were in flight when the page went away; 6-7 came by the exit send.
    write_raw(
        tmp_path,
        "raw/2026/12/07/10/a.ndjson",
        *sends("s", ("10:00:00.000", [1, 3]), ("10:00:09.000", [6, 7])),
    )
    day = measure_delivery(LocalStore(tmp_path), [DAY]).days[0]
    assert day.gap_runs == [GapRun("s", 2, 2, at_end=False), GapRun("s", 4, 5, at_end=True)]
    assert (day.total.gaps_inside, day.total.gaps_at_end, day.total.sessions_with_end_gaps) == (
        1,
        2,
        1,
    )


def test_slices_by_browser_and_device_type(tmp_path: Path) -> None:
    write_raw(
        tmp_path,
        "raw/2026/12/07/10/a.ndjson",
        *sends("c", ("10:00:00.000", [1, 3])),
        *sends("f", ("10:00:00.000", [1, 2]), uaBrowser="Firefox", uaDeviceType="mobile"),
    )
    day = measure_delivery(LocalStore(tmp_path), [DAY]).days[0]
    assert day.by_browser["Chrome"].rate == pytest.approx(2 / 3)
    assert day.by_browser["Firefox"].rate == 1.0
    assert day.by_device_type["mobile"].sessions == 1
    assert day.by_device_type["desktop"].gaps == 1


def test_a_session_across_midnight_stays_whole_and_belongs_to_its_first_day(
    tmp_path: Path,
) -> None:
    before, after = "2026-12-06T23:59:00.000", "2026-12-08T00:00:30.000"
    write_raw(tmp_path, "raw/2026/12/06/23/a.ndjson", *sends("late", (before, [1, 2])))
    write_raw(tmp_path, "raw/2026/12/07/00/a.ndjson", *sends("late", ("00:00:30.000", [3])))
    write_raw(tmp_path, "raw/2026/12/07/23/a.ndjson", *sends("night", ("23:59:00.000", [1])))
    write_raw(tmp_path, "raw/2026/12/08/00/a.ndjson", *sends("night", (after, [3])))
    day = measure_delivery(LocalStore(tmp_path), [DAY]).days[0]
    # "late" started the day before; "night" is the 7th's, and its 2 is missing.
    assert day.total.sessions == 1
    assert day.gap_runs == [GapRun("night", 2, 2, at_end=True)]


def test_numbers_that_are_not_a_counter_are_unnumbered(tmp_path: Path) -> None:
    write_raw(
        tmp_path,
        "raw/2026/12/07/10/a.ndjson",
        record("s", 1),
        record("s", 0, eventId="zero"),
        record("s", 2**60, eventId="huge"),
        record("s", "3", eventId="text"),
        record("s", True, eventId="flag"),
        record("s", 2.0, eventId="float"),
        lines=(b"not json\n", b'{"sessionId": 5, "seq": 1}\n'),
    )
    report = measure_delivery(LocalStore(tmp_path), [DAY])
    assert (report.total.received, report.total.unnumbered, report.total.gaps) == (1, 5, 0)
    assert report.bad_lines == 1


def test_gap_runs_listed_are_bounded_but_all_counted(tmp_path: Path) -> None:
    numbers = list(range(1, 4 * MAX_LISTED_GAP_RUNS, 2))  # every other number is missing
    write_raw(tmp_path, "raw/2026/12/07/10/a.ndjson", *sends("s", ("10:00:00.000", numbers)))
    day = measure_delivery(LocalStore(tmp_path), [DAY]).days[0]
    assert len(day.gap_runs) == MAX_LISTED_GAP_RUNS
    assert day.gap_runs_total == day.total.gaps == len(numbers) - 1


def test_reads_an_s3_bucket_with_a_prefix(s3: Any, bucket: str, moto_endpoint: str) -> None:
    body = b"".join(json.dumps(r).encode() + b"\n" for r in sends("s", ("10:00:00.000", [1, 3])))
    s3.put_object(Bucket=bucket, Key="site/raw/2026/12/07/10/a.gz", Body=gzip.compress(body))
    result = CliRunner().invoke(
        cli,
        [
            "delivery",
            "--date",
            "2026-12-07",
            "--source",
            f"s3://{bucket}/site",
            "--json",
            "--endpoint-url",
            moto_endpoint,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {key: data[key] for key in ("sessions", "received", "gaps", "duplicates")} == {
        "sessions": 1,
        "received": 2,
        "gaps": 1,
        "duplicates": 0,
    }
    assert data["rate"] == pytest.approx(2 / 3, abs=1e-6)
    assert data["days"][0]["gapRuns"] == [
        {"sessionId": "s", "first": 2, "last": 2, "where": "inside"}
    ]


def test_the_command_prints_days_slices_and_gaps(tmp_path: Path) -> None:
    write_raw(tmp_path, "raw/2026/12/07/10/a.ndjson", *sends("s", ("10:00:00.000", [1, 4])))
    write_raw(tmp_path, "raw/2026/12/08/10/a.ndjson", *sends("t", ("10:00:00.000", [1])))
    result = CliRunner().invoke(
        cli,
        ["delivery", "--date", "2026-12-07", "--to-date", "2026-12-08", "--source", str(tmp_path)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "2026-12-07: 1 sessions, 2 received, 2 gaps (2 inside, 0 at the end), "
        "0 duplicates, rate 50.00 %"
    )
    assert "  gap s seq 2-3 (inside)" in lines
    assert "  browser Chrome: 1 sessions, 2 received, 2 gaps" in "\n".join(lines)
    assert any(line.startswith("2026-12-08: 1 sessions, 1 received, 0 gaps") for line in lines)
    assert any(line.startswith("all days: 2 sessions, 3 received, 2 gaps") for line in lines)


def test_the_command_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    for args, message in (
        (["--date", "yesterday", "--source", str(tmp_path)], "is not a date"),
        (["--date", "2026-12-07", "--source", str(tmp_path / "none")], "is not a directory"),
    ):
        result = CliRunner().invoke(cli, ["delivery", *args])
        assert result.exit_code == 2 and message in result.output
        assert "Traceback" not in result.output


def test_the_daily_schedule_logs_the_days_delivery_rate(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"".join(json.dumps(r).encode() + b"\n" for r in sends("s", ("10:00:00.000", [1, 2, 4])))
    s3.put_object(Bucket=bucket, Key="raw/2026/12/07/10/a.gz", Body=gzip.compress(body))
    monkeypatch.setitem(app_module._clients, "s3", s3)
    with Client(app_module.app, stage_name="dev") as client:
        tick = client.events.generate_cw_event(
            source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
        )
        tick["time"] = "2026-12-08T00:30:00Z"
        with caplog.at_level("INFO"):
            client.lambda_.invoke("build_daily_csv", tick)
    lines = [json.loads(r.getMessage()) for r in caplog.records if '"delivery"' in r.getMessage()]
    assert lines == [
        {
            "event": "delivery",
            "date": "2026-12-07",
            "sessions": 1,
            "received": 3,
            "gaps": 1,
            "gapsInside": 1,
            "gapsAtEnd": 0,
            "duplicates": 0,
            "unnumbered": 0,
            "sessionsWithGaps": 1,
            "sessionsWithEndGaps": 0,
            "rate": 0.75,
        }
    ]
    assert S3Store(s3, bucket).exists("csv/2026-12-07_combined.csv")


def test_a_full_disk_is_one_line_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_raw(tmp_path, "raw/2026/12/07/10/a.ndjson", record("s", 1))

    def full(*_: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(RecordSpool, "load", full)
    arguments = ["delivery", "--date", "2026-12-07", "--source", str(tmp_path)]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 1
    assert "temporary database failed: database or disk is full" in result.output
    assert "Traceback" not in result.output
