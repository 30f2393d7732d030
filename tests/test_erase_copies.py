"""Erasure is complete: what POST /events stored of one person, in every kind of copy
(raw events, a raw bad line, CSV parts, the daily file and its errors object, rejected
events whether they hold the batch context or name it by contextOf, bodies refused whole,
parsed or not), is gone after `python -m exporter erase`; another person's stays."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from click.testing import CliRunner

import app as app_module
from chalicelib.config import Settings
from chalicelib.erase import run as erase_module
from chalicelib.ingest.validate import Rejection
from chalicelib.jobs import build_daily_csv, convert_raw_object
from chalicelib.rejects.record import encode, event_rejects
from chalicelib.storage.local import LocalStore
from exporter.cli import cli
from tests.factories import body_bytes, event

PAGE_PATH = "/" + "p" * 1100  # the batch context is over 1 KiB: kept once per request


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(erase_module, "SCRYPT_COST", {"n": 2, "r": 1, "p": 1})


def person_posts(client: Client, user: str) -> None:
    """One person's requests: 5 valid and 5 invalid events under a shared context, a
    batch refused whole (too many events) and a body that is no JSON."""
    context = {"userId": user, "pagePath": PAGE_PATH}
    events = [event(sessionId=f"s-{user}") for _ in range(5)]
    events += [event(sessionId=f"s-{user}", value="high") for _ in range(5)]
    answers = [
        client.http.post(
            "/events",
            headers={"Content-Type": "application/json"},
            body=body_bytes({"sentAt": 1707782431000, "context": context, "events": events}),
        )
    ]
    tiny = {"timestamp": 1707782430123, "sessionId": f"t-{user}", "metricName": "m"}
    too_many = {"context": {"userId": user}, "events": [tiny] * 501}
    torn = '{"context": {"userId": "' + user + '"}, "events": ['
    for raw in (body_bytes(too_many), torn.encode()):
        answers.append(
            client.http.post("/events", headers={"Content-Type": "text/plain"}, body=raw)
        )
    assert [a.status_code for a in answers] == [200, 413, 400]
    assert answers[0].json_body["accepted"] == 5


def text_of(root: Path, folder: str) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(root.glob(f"{folder}/**/*.*")))


def rejected_records(root: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in root.glob("rejected/**/*.ndjson")
        for line in path.read_text().splitlines()
    ]


def test_erase_removes_every_stored_copy_of_one_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = dataclasses.replace(app_module.SETTINGS, data_dir=str(tmp_path))
    monkeypatch.setattr(app_module, "SETTINGS", settings)
    monkeypatch.setattr(app_module, "collector", app_module._make_collector())
    with Client(app_module.app, stage_name="dev") as client:
        person_posts(client, "u-1")
        person_posts(client, "u-2")
    store = LocalStore(tmp_path)
    [raw_key] = store.list_keys("raw/")
    with (tmp_path / raw_key).open("a") as handle:  # a torn line naming u-1, and u-2
        handle.write('{"userId": "u-1", "sessi\n{"userId": "u-2", "sessi\n')
    convert_raw_object(store, raw_key, Settings())  # the CSV part, as the dev stage makes
    day = raw_key.split("/")[1:4]
    build_daily_csv(store, date(*map(int, day)), Settings())
    for folder in ("raw", "csv", "errors", "rejected"):
        assert "u-1" in text_of(tmp_path, folder), folder
    # Of u-1's five rejected events, four hold only contextOf: no u-1 in them at all.
    named = Counter("contextOf" in r for r in rejected_records(tmp_path) if "index" in r)
    assert named == {True: 8, False: 2}

    args = ["erase", "--match", "userId=u-1", "--from", "-".join(day), "--source", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "erased 10 event(s), 1 bad line(s), 2 rejected body(ies) from 2 object(s) "
        "(1 raw, 1 rejected)"
    ), result.stdout
    for folder in ("raw", "csv", "errors", "rejected", "erasure"):
        assert "u-1" not in text_of(tmp_path, folder), folder
    # u-2's copies are all there: 5 raw events (and its bad line), 5 rejected events
    # (one with the context, four naming it), 2 bodies.
    raw_lines = (tmp_path / raw_key).read_text().splitlines()
    assert sum('"u-2"' in line for line in raw_lines) == 6 and len(raw_lines) == 6
    records = rejected_records(tmp_path)
    assert len(records) == 7
    assert Counter("contextOf" in r for r in records if "index" in r) == {True: 4, False: 1}
    assert sum(row.count("u-2") for row in text_of(tmp_path, "csv").splitlines()) >= 10


def test_records_naming_a_context_kept_in_another_object_go_too(tmp_path: Path) -> None:
    """Firehose may deliver one request's rejects in two objects: the record holding
    the context in one, records naming it in the other."""
    body = {
        "sentAt": 1707782431000,
        "context": {"userId": "u-1", "pagePath": PAGE_PATH},
        "events": [event(value="high") for _ in range(3)],
    }
    records = event_rejects(
        received_at="2026-11-28T10:00:00.000Z",
        request_id="r-1",
        body=body,
        rejections=[Rejection(i, "bad value") for i in range(3)],
    )
    assert ["contextOf" in r for r in records] == [False, True, True]
    folder = tmp_path / "rejected" / "2026" / "11" / "28" / "10"
    folder.mkdir(parents=True)
    (folder / "a.ndjson").write_bytes(b"".join(encode(records[:1])))
    (folder / "b.ndjson").write_bytes(b"".join(encode(records[1:])))
    args = ["erase", "--match", "userId=u-1", "--from", "2026-11-28", "--source", str(tmp_path)]
    result = CliRunner().invoke(cli, [*args, "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("erased 3 event(s) from 2 object(s)"), result.stdout
    assert rejected_records(tmp_path) == []
