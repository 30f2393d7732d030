"""`python -m exporter rejected` and `replay` end to end: what the route rejected is
counted as sent, a replay after raising a limit delivers those events once (a second
delivers none) and they appear once in the day's CSV; in dev (a folder) and in prod
(moto's S3 and Firehose)."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from click.testing import CliRunner

import app as app_module
from chalicelib.rejects.summary import BODY, OTHER, RejectSummary, iter_records
from chalicelib.storage.base import ObjectStore
from chalicelib.storage.local import LocalStore
from chalicelib.storage.s3 import S3Store
from exporter.cli import cli
from tests.conftest import TEST_BUCKET
from tests.factories import MISSING, batch, body_bytes, event
from tests.test_rejects_wiring import prod_app, prod_streams  # noqa: F401 (a fixture)

BIG_ATTRIBUTES = {f"k{i}": "x" * 4000 for i in range(9)}  # ~36 KB stored: over 32 KiB
# Around today, so a run that crosses midnight (UTC) still finds its own files.
TODAY = datetime.now(UTC).date()
SPAN = ["--date", str(TODAY - timedelta(days=1)), "--to-date", str(TODAY + timedelta(days=1))]


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def as_json(*args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(invoke(*args, "--json").stdout)
    return data


def sent_batch() -> dict[str, Any]:
    """Two good events, three too big for 32 KiB (one without an eventId), one bad value."""
    return batch(
        event(eventId="good-1"),
        event(eventId="big-1", metricName="Big", metricAttributes=BIG_ATTRIBUTES),
        event(eventId="good-2"),
        event(eventId="big-2", metricName="Big", metricAttributes=BIG_ATTRIBUTES),
        event(eventId=MISSING, metricName="Big", metricAttributes=BIG_ATTRIBUTES),
        event(eventId="bad-1", value="high"),
    )


def post_all(client: Client) -> None:
    with client:
        answer = client.http.post(
            "/events", headers={"Content-Type": "text/plain"}, body=body_bytes(sent_batch())
        )
        assert answer.status_code == 200 and answer.json_body["accepted"] == 2
        refused = client.http.post("/events", headers={"Content-Type": "text/plain"}, body=b"{")
        assert refused.status_code == 400


def check_counts(source: list[str]) -> None:
    counts = as_json("rejected", *SPAN, *source)
    assert (counts["events"], counts["bodies"], counts["unreadable"]) == (4, 1, 0)
    groups: Counter[tuple[str, str]] = Counter()
    for group in counts["groups"]:  # sizes in the reasons differ: group them by how they start
        groups[group["metricName"], group["reason"][:9]] += group["count"]
    assert groups == {
        ("Big", "event is "): 3,
        ("ContentElementInteraction", "event.val"): 1,
        (BODY, "body is n"): 1,
    }


def check_replays(source: list[str], limits: list[str]) -> list[str]:
    """A replay with the raised limit sends the three big events; a second, none."""
    first = as_json("replay", *SPAN, *source, *limits)
    assert (first["replayed"], first["stillInvalid"], first["alreadyReplayed"]) == (3, 2, 0)
    assert first["stillInvalidByReason"] == {
        "event.value must be number or null": 1,
        "body is not valid JSON: Expecting property name enclosed in double quotes at line 1 "
        "column 2": 1,
    }
    second = as_json("replay", *SPAN, *source, *limits)
    assert (second["replayed"], second["alreadyReplayed"]) == (0, 3)
    ledgers: list[str] = first["ledgers"]
    return ledgers


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def check_csv(out: Path, store: ObjectStore) -> None:
    """Each event once; the replayed ones with the serverTimestamp they were refused at."""
    [received_at] = {
        record["receivedAt"]
        for record in iter_records(store, store.list_keys("rejected/"), print)
        if record.get("event", {}).get("metricName") == "Big"
    }
    rows = csv_rows(out)
    ids = sorted(row["eventId"] for row in rows)
    assert len(ids) == len(set(ids)) == 5
    assert {"good-1", "good-2", "big-1", "big-2"} <= set(ids)
    big = [row for row in rows if row["metricName"] == "Big"]
    assert len(big) == 3 and {row["serverTimestamp"] for row in big} == {received_at}


def test_dev_reject_count_replay_and_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = dataclasses.replace(app_module.SETTINGS, data_dir=str(tmp_path))
    monkeypatch.setattr(app_module, "SETTINGS", settings)
    monkeypatch.setattr(app_module, "collector", app_module._make_collector())
    post_all(Client(app_module.app, stage_name="dev"))
    source = ["--source", str(tmp_path)]
    check_counts(source)
    limits = ["--max-event-bytes", "65536", "--project-dir", str(tmp_path)]
    ledgers = check_replays(source, limits)
    out = tmp_path / "day.csv"
    invoke("export", *SPAN, *source, "--out", str(out))
    check_csv(out, LocalStore(tmp_path))
    # The replayed events have their CSV part, as live events do in dev.
    parts = [row for p in (tmp_path / "csv" / "parts").rglob("*.csv") for row in csv_rows(p)]
    assert sum(row["metricName"] == "Big" for row in parts) == 3
    # Without the ledger they are sent again, and the CSV still has each once.
    for ledger in ledgers:
        Path(ledger).unlink()
    assert as_json("replay", *SPAN, *source, *limits)["replayed"] == 3
    invoke("export", *SPAN, *source, "--out", str(out))
    check_csv(out, LocalStore(tmp_path))


def test_prod_reject_count_replay_and_csv(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    prod_streams: tuple[Any, str, str],  # noqa: F811
    moto_endpoint: str,
    s3: Any,
) -> None:
    firehose, events, rejects = prod_streams
    post_all(
        prod_app(monkeypatch, firehose, firehose, stream_name=events, rejects_stream_name=rejects)
    )
    source = ["--source", f"s3://{TEST_BUCKET}", "--endpoint-url", moto_endpoint]
    check_counts(source)
    limits = ["--stream-name", events, "--max-event-bytes", "65536", "--project-dir", str(tmp_path)]
    ledgers = check_replays(source, limits)
    assert all(ledger.startswith(f"s3://{TEST_BUCKET}/replayed/") for ledger in ledgers)
    out = tmp_path / "day.csv"
    invoke("export", *SPAN, *source, "--out", str(out))
    check_csv(out, S3Store(s3, TEST_BUCKET))


def test_rejected_writes_the_records_as_csv_and_caps_the_table(tmp_path: Path) -> None:
    folder = tmp_path / "rejected" / "2026" / "11" / "28" / "10"
    folder.mkdir(parents=True)
    records = [
        {
            "receivedAt": "t",
            "requestId": f"r{i}",
            "reason": f"reason {i % 3}",
            "index": i,
            "event": {"metricName": "=cmd()" if i == 0 else f"M{i % 2}"},
            "context": {"a": 1},
        }
        for i in range(6)
    ]
    records.append(
        {
            "receivedAt": "t",
            "requestId": "b",
            "reason": "bad",
            "status": 415,
            "body": "@x",
            "bodyEncoding": "text",
            "bodyBytes": 2,
        }
    )
    (folder / "a.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records) + "{bad\n")
    out = tmp_path / "out" / "rejects.csv"
    result = invoke(
        "rejected",
        "--date",
        "2026-11-28",
        "--source",
        str(tmp_path),
        "--csv",
        str(out),
        "--top",
        "2",
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("2026-11-28: 6 rejected event(s), 1 body(ies) refused whole")
    assert lines[0].endswith("; 1 unreadable line(s)")
    assert "… and 5 more group(s) with 5 reject(s) (--json)" in result.stdout
    assert f"wrote 7 record(s) to {out}" in result.stdout
    rows = csv_rows(out)
    assert len(rows) == 7 and rows[0]["event"] == '{"metricName":"=cmd()"}'
    assert rows[0]["metricName"] == "'=cmd()" and rows[0]["context"] == '{"a":1}'
    assert rows[6]["metricName"] == BODY and rows[6]["body"] == "'@x"
    assert rows[6]["status"] == "415" and rows[6]["index"] == ""
    empty = invoke("rejected", "--date", "2026-11-27", "--source", str(tmp_path))
    assert empty.stdout.startswith("2026-11-27: 0 rejected event(s)")


def test_groups_past_the_cap_are_counted_together() -> None:
    summary = RejectSummary(max_groups=2)
    for reason in ("a", "b", "c", "d", "a"):
        summary.add({"reason": reason, "index": 0, "event": {}})
    assert summary.ranked() == [(2, OTHER, OTHER), (2, "a", "(none)"), (1, "b", "(none)")]


def test_replay_refuses_unknown_stage_and_missing_stream(tmp_path: Path) -> None:
    chalice = tmp_path / ".chalice"
    chalice.mkdir()
    shutil.copy(Path(__file__).resolve().parent.parent / ".chalice" / "config.json", chalice)
    base = ["replay", "--date", "2026-11-28", "--project-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, [*base, "--source", str(tmp_path), "--stage", "qa"])
    assert result.exit_code == 2 and "has no stage 'qa'" in result.output
    result = CliRunner().invoke(cli, [*base, "--source", "s3://b", "--stage", "dev"])
    assert result.exit_code == 2 and "no events stream" in result.output
    result = CliRunner().invoke(cli, [*base, "--source", str(tmp_path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "max-event-bytes=32768" in result.output and "stage dev" in result.output


def test_replay_into_a_missing_stream_fails_in_one_line_and_keeps_no_ledger(
    tmp_path: Path, moto_endpoint: str, s3: Any, bucket: str
) -> None:
    from chalicelib.ingest.validate import Rejection
    from chalicelib.rejects.record import encode, event_rejects

    body = batch(event(metricAttributes=BIG_ATTRIBUTES))
    records = event_rejects(
        received_at="2026-11-28T10:00:00.000Z",
        request_id="r",
        body=body,
        rejections=[Rejection(0, "too big")],
    )
    s3.put_object(Bucket=bucket, Key="rejected/2026/11/28/10/x", Body=b"".join(encode(records)))
    args = ["replay", "--date", "2026-11-28", "--source", f"s3://{bucket}"]
    args += ["--endpoint-url", moto_endpoint, "--stream-name", "no-such-stream"]
    args += ["--max-event-bytes", "65536", "--project-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "Firehose refused the records (ResourceNotFoundException)" in result.output
    assert "0 event(s) were sent before that" in result.output
    assert "replayed/" not in str(s3.list_objects_v2(Bucket=bucket).get("Contents"))


@pytest.mark.parametrize(
    "mode", [[], ["--json"], ["--csv", "out.csv"]], ids=["table", "json", "csv"]
)
def test_a_lone_surrogate_in_a_stored_reject_breaks_no_output(
    tmp_path: Path, mode: list[str]
) -> None:
    """A reject can quote what UTF-8 cannot hold (a \\ud800 escape the client sent)."""
    record = {
        "receivedAt": "2026-11-28T10:00:00.000Z",
        "requestId": "r",
        "reason": 'duplicate key "\ud800" in a JSON object',
        "schemaVersion": "x",
        "index": 0,
        "event": {"metricName": "m\ud800", "metricAttributes": "\ud800"},
        "context": {},
    }
    path = tmp_path / "rejected" / "2026" / "11" / "28" / "10" / "r.ndjson"
    path.parent.mkdir(parents=True)
    path.write_bytes(json.dumps(record).encode() + b"\n")  # ASCII, \ud800 escaped
    args = [a.replace("out.csv", str(tmp_path / "out.csv")) for a in mode]
    result = invoke("rejected", "--date", "2026-11-28", "--source", str(tmp_path), *args)
    assert result.exit_code == 0, result.output
    written = (tmp_path / "out.csv").read_text() if "--csv" in args else ""
    assert "\\ud800" in result.output + written
