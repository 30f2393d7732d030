"""Replay is as strict as the route: through POST /events and `python -m exporter replay`,
the stage's bot rule (DROP_BOTS) applies to what is replayed, a body refused whole gets
its request's server fields back, and a stored `server` object can add only what the
server adds (never an event's field, a column of its own, or a duplicate key)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from click.testing import CliRunner

import app as app_module
from chalicelib.ingest.enrich import SERVER_FIELDS, Enricher
from exporter.cli import cli
from tests.factories import batch, body_bytes, event

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BIG_ATTRIBUTES = {f"k{i}": "x" * 4000 for i in range(9)}  # over 32 KiB once stored


def post(client: Client, body: Any, user_agent: str, status: int) -> None:
    answer = client.http.post(
        "/events",
        headers={
            "Content-Type": "text/plain",
            "User-Agent": user_agent,
            "CloudFront-Viewer-Country": "DE",
        },
        body=body_bytes(body),
    )
    assert answer.status_code == status, answer.body


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    settings = dataclasses.replace(app_module.SETTINGS, data_dir=str(tmp_path))
    monkeypatch.setattr(app_module, "SETTINGS", settings)
    monkeypatch.setattr(app_module, "collector", app_module._make_collector())
    return tmp_path


def project(root: Path, drop_bots: bool) -> list[str]:
    """A project folder whose dev stage says DROP_BOTS."""
    folder = root / f"project-{drop_bots}"
    (folder / ".chalice").mkdir(parents=True)
    env = {"DROP_BOTS": "true" if drop_bots else "false"}
    config = {"stages": {"dev": {"environment_variables": env}}}
    (folder / ".chalice" / "config.json").write_text(json.dumps(config))
    return ["--project-dir", str(folder)]


def replay(root: Path, *extra: str) -> dict[str, Any]:
    day = next(root.glob("rejected/*/*/*")).relative_to(root / "rejected").as_posix()
    args = ["replay", "--date", day.replace("/", "-"), "--source", str(root), "--json", *extra]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def raw_lines(root: Path) -> list[dict[str, Any]]:
    """Every stored line, read so that a duplicate key fails the test."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate key in {keys}"
        return dict(pairs)

    return [
        json.loads(line, object_pairs_hook=no_duplicates)
        for path in sorted(root.glob("raw/**/*.ndjson"))
        for line in path.read_text().splitlines()
    ]


def googlebot_and_browser(data: Path) -> None:
    """Googlebot's 501-event batch (refused whole, 413), a headless browser's too-big
    event (webdriver), and a person's too-big event."""
    tiny = {"timestamp": 1707782430123, "sessionId": "bot-session", "metricName": "Crawl"}
    with Client(app_module.app, stage_name="dev") as client:
        post(client, {"sentAt": 1707782431000, "events": [tiny] * 501}, GOOGLEBOT, 413)
        driven = batch(event(sessionId="driven", metricAttributes=BIG_ATTRIBUTES))
        driven["context"]["webdriver"] = True
        post(client, driven, CHROME, 200)
        person = batch(event(sessionId="person", metricAttributes=BIG_ATTRIBUTES))
        post(client, person, CHROME, 200)


def test_replay_applies_the_stages_bot_rule(data: Path) -> None:
    googlebot_and_browser(data)
    raised = ["--max-events-per-batch", "1000", "--max-event-bytes", "65536"]
    report = replay(data, *raised, *project(data, drop_bots=True))
    assert (report["replayed"], report["droppedBots"]) == (1, 502)
    assert [line["sessionId"] for line in raw_lines(data)] == ["person"]
    # Dropped, not ledgered: a stage that keeps bots can still replay them.
    kept = replay(data, *raised, *project(data, drop_bots=False))
    assert (kept["replayed"], kept["alreadyReplayed"], kept["droppedBots"]) == (502, 1, 0)


def test_a_body_refused_whole_is_replayed_with_its_requests_server_fields(data: Path) -> None:
    googlebot_and_browser(data)
    raised = ["--max-events-per-batch", "1000", "--max-event-bytes", "65536"]
    assert replay(data, *raised, *project(data, drop_bots=False))["replayed"] == 503
    lines = raw_lines(data)
    crawled = [line for line in lines if line["sessionId"] == "bot-session"]
    assert len(crawled) == 501
    assert {(c["isBot"], c["uaBrowser"], c["uaDeviceType"], c["country"]) for c in crawled} == {
        (True, "Googlebot", "bot", "DE")
    }
    [driven] = [line for line in lines if line["sessionId"] == "driven"]
    assert (driven["isBot"], driven["uaDeviceType"], driven["uaBrowser"]) == (True, "bot", "Chrome")
    assert "webdriver" not in driven
    [person] = [line for line in lines if line["sessionId"] == "person"]
    assert (person["isBot"], person["uaDeviceType"], person["country"]) == (False, "desktop", "DE")


def test_an_edited_server_object_cannot_change_or_add_fields(data: Path) -> None:
    with Client(app_module.app, stage_name="dev") as client:
        post(client, batch(event(eventId="own-id", metricAttributes=BIG_ATTRIBUTES)), CHROME, 200)
    [path] = data.glob("rejected/**/*.ndjson")
    record = json.loads(path.read_text())
    record["server"].update(
        {
            "sessionId": "another-session",
            "eventId": "another-id",
            "serverTimestamp": "2000-01-01T00:00:00.000Z",
            "attr_injected": "x",
            "bad\nname": 1,
            "isBot": "yes",
            "country": "not a country",
            "uaDeviceType": "\x1b[2J",
            "uaBrowser": "B" * 5000,
        }
    )
    path.write_text(json.dumps(record) + "\n")
    assert replay(data, "--max-event-bytes", "65536")["replayed"] == 1
    [line] = raw_lines(data)
    assert (line["sessionId"], line["eventId"]) == ("session-1", "own-id")
    assert line["serverTimestamp"] == record["receivedAt"]
    assert "attr_injected" not in line and "bad\nname" not in line
    assert "isBot" not in line  # a string is not what the server adds
    assert (line["country"], line["uaDeviceType"], len(line["uaBrowser"])) == ("", "other", 64)
    assert set(line) - set(record["event"]) - set(record["context"]) <= {
        *SERVER_FIELDS,
        "serverTimestamp",
        "derivedTimestamp",
    }


def test_the_whitelist_is_what_the_server_adds() -> None:
    """SERVER_FIELDS names every field the route adds (a new one must be listed)."""
    fields = Enricher(store_user_agent=True).fields({"user-agent": CHROME}, {})
    assert fields is not None and tuple(fields) == SERVER_FIELDS
