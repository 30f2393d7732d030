"""The S3-event handler and the daily schedule, through Chalice's test client, on moto S3."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.config import Settings
from chalicelib.jobs import build_daily_csv, day_before
from chalicelib.layout import part_key_for
from chalicelib.storage.s3 import S3Store
from tests.factories import event


@pytest.fixture
def client(s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setitem(app_module._clients, "s3", s3)
    with Client(app_module.app, stage_name="dev") as test_client:
        yield test_client


def stored_line(**overrides: Any) -> bytes:
    record = {**event(), "serverTimestamp": "2026-11-27T10:00:00.000Z", "device": "d"}
    record.update(overrides)
    return json.dumps(record).encode() + b"\n"


def put_raw(s3: Any, bucket: str, key: str, *lines: bytes, compress: bool = True) -> None:
    body = b"".join(lines)
    s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body, mtime=0) if compress else body)


def read_csv(s3: Any, bucket: str, key: str) -> tuple[list[str], list[dict[str, str]], bytes]:
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    return header, [dict(zip(header, row, strict=True)) for row in reader], data


def s3_event(client: Client, bucket: str, key: str) -> dict[str, Any]:
    # S3 URL-encodes the key in notifications; Chalice decodes it once for the handler.
    return client.events.generate_s3_event(bucket=bucket, key=quote_plus(key, safe="/"))


@pytest.mark.parametrize(
    "name",
    ["firehose-1-2026-11-27-10-00-00-abc.gz", "odd+name %41=x.gz", "plain.ndjson"],
)
def test_new_raw_object_becomes_a_csv_part(client: Client, s3: Any, bucket: str, name: str) -> None:
    key = f"raw/2026/11/27/10/{name}"
    put_raw(
        s3,
        bucket,
        key,
        stored_line(eventId="a"),
        stored_line(eventId="b"),
        compress=name.endswith(".gz"),
    )
    client.lambda_.invoke("convert_raw_object", s3_event(client, bucket, key))
    part = part_key_for(key, Settings())
    assert part.startswith("csv/parts/2026/11/27/10/") and part.endswith(".csv")
    _, rows, _ = read_csv(s3, bucket, part)
    assert [r["eventId"] for r in rows] == ["a", "b"]


def test_repeated_notification_rewrites_the_same_bytes(
    client: Client, s3: Any, bucket: str
) -> None:
    key = "raw/2026/11/27/10/object.gz"
    put_raw(s3, bucket, key, stored_line(eventId="a"), stored_line(eventId="a"))
    notification = s3_event(client, bucket, key)
    client.lambda_.invoke("convert_raw_object", notification)
    *_, first = read_csv(s3, bucket, "csv/parts/2026/11/27/10/object.csv")
    client.lambda_.invoke("convert_raw_object", notification)
    *_, second = read_csv(s3, bucket, "csv/parts/2026/11/27/10/object.csv")
    assert first == second and first.count(b"\r\n") == 2  # header + one row


def test_bad_lines_go_to_errors_and_the_rest_converts(client: Client, s3: Any, bucket: str) -> None:
    key = "raw/2026/11/27/10/mixed.gz"
    put_raw(s3, bucket, key, stored_line(eventId="a"), b"{broken\n", stored_line(eventId="b"))
    client.lambda_.invoke("convert_raw_object", s3_event(client, bucket, key))
    _, rows, _ = read_csv(s3, bucket, "csv/parts/2026/11/27/10/mixed.csv")
    assert [r["eventId"] for r in rows] == ["a", "b"]
    errors = s3.get_object(Bucket=bucket, Key="errors/parts/2026/11/27/10/mixed.jsonl")
    [bad] = [json.loads(line) for line in errors["Body"].read().splitlines()]
    assert bad == {"source": key, "line": 2, "reason": bad["reason"], "content": "{broken"}


def test_a_zero_byte_folder_key_makes_no_part(client: Client, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="raw/2024/02/13/10/", Body=b"")
    client.lambda_.invoke("convert_raw_object", s3_event(client, bucket, "raw/2024/02/13/10/"))
    listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [item["Key"] for item in listed] == ["raw/2024/02/13/10/"]
    # and the daily build does not read it as an object (0 sources, a header-only file)
    report = build_daily_csv(S3Store(s3, bucket), day_before("2024-02-14T00:30:00Z"), Settings())
    assert report.sources == 0 and report.bad_lines == 0


def test_daily_schedule_builds_yesterdays_combined_file(
    client: Client, s3: Any, bucket: str
) -> None:
    put_raw(s3, bucket, "raw/2026/11/27/09/one.gz", stored_line(eventId="a", metricName="A"))
    put_raw(
        s3,
        bucket,
        "raw/2026/11/27/23/two.gz",
        stored_line(eventId="b"),
        stored_line(eventId="a"),
        stored_line(eventId="c", metricAttributes={"x": {"y": 1}}),
    )
    put_raw(s3, bucket, "raw/2026/11/28/00/today.gz", stored_line(eventId="not-yesterday"))
    tick = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    tick["time"] = "2026-11-28T00:15:00Z"
    client.lambda_.invoke("build_daily_csv", tick)
    header, rows, first = read_csv(s3, bucket, "csv/2026-11-27_combined.csv")
    assert [r["eventId"] for r in rows] == ["a", "b", "c"]
    assert rows[0]["metricName"] == "A"  # the first copy of a duplicate is kept
    assert header[-1] == "attr_x_y"
    client.lambda_.invoke("build_daily_csv", tick)
    assert read_csv(s3, bucket, "csv/2026-11-27_combined.csv")[2] == first


def test_a_day_without_data_is_a_header_only_file(client: Client, s3: Any, bucket: str) -> None:
    tick = client.events.generate_cw_event(
        source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
    )
    tick["time"] = "2026-01-02T00:15:00Z"
    client.lambda_.invoke("build_daily_csv", tick)
    header, rows, _ = read_csv(s3, bucket, "csv/2026-01-01_combined.csv")
    assert rows == [] and header[0] == "timestamp"


# --- chalice local: the same code converts the local sink's files --------------------------


def test_dev_stage_converts_what_the_local_sink_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from chalicelib.dev.loop import DevLoop
    from chalicelib.ingest.collect import Collector
    from chalicelib.ingest.validate import BatchValidator
    from tests.factories import batch, body_bytes

    settings = dataclasses.replace(app_module.SETTINGS, data_dir=str(tmp_path))
    monkeypatch.setattr(app_module, "SETTINGS", settings)
    logged: list[dict[str, Any]] = []
    # The app's own loop, with its conversion process, on this test's folder.
    loop = DevLoop(settings, logged.append, delay=0.05)
    monkeypatch.setattr(app_module, "dev_loop", loop)
    collector = Collector(
        BatchValidator(settings.limits), app_module._make_sink, app_module.app.log
    )
    monkeypatch.setattr(app_module, "collector", collector)
    try:
        with Client(app_module.app, stage_name="dev") as client:
            response = client.http.post(
                "/events",
                headers={"Content-Type": "application/json"},
                body=body_bytes(batch(event(eventId="local-1"), event(eventId="local-2"))),
            )
    finally:
        loop.stop()  # what is pending is converted before it returns
    assert response.json_body["accepted"] == 2
    [raw] = list((tmp_path / "raw").rglob("*.ndjson"))
    [part] = list((tmp_path / "csv" / "parts").rglob("*.csv"))
    assert part.name == f"{raw.name}.csv"
    assert [line["event"] for line in logged] == ["convert"]
    assert logged[0]["rows"] == 2 and logged[0]["output"] == str(part)
    rows = list(csv.DictReader(part.open(newline="")))
    assert [r["eventId"] for r in rows] == ["local-1", "local-2"]
