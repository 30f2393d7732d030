"""Enrichment through the route: the server's fields in every stored record, from real
headers as Chalice hands them over (any letter case), and the DROP_BOTS answer."""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from chalice.test import Client

import app as app_module
from chalicelib.csv.columns import FIXED_COLUMNS
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.enrich import Enricher
from chalicelib.ingest.validate import SCHEMA_PATH, BatchValidator
from chalicelib.sinks import MemorySink
from tests.conftest import REPO_ROOT
from tests.csv_helpers import run, source
from tests.factories import batch, body_bytes, event
from tests.test_enrich import CHROME_WINDOWS, GOOGLEBOT

SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
SERVER_FIELDS = jsonschema.Draft7Validator(SCHEMA["definitions"]["serverFields"])
SERVER_PROPERTIES = set(SCHEMA["definitions"]["serverFields"]["properties"])


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(app_module.app, stage_name="dev") as test_client:
        yield test_client


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Callable[..., MemorySink]:
    """Route the app's requests to a memory sink through an Enricher with these settings."""

    def install(**settings: bool) -> MemorySink:
        memory = MemorySink()
        validator = BatchValidator(app_module.SETTINGS.limits)
        collector = Collector(
            validator, lambda: memory, app_module.app.log, enricher=Enricher(**settings)
        )
        monkeypatch.setattr(app_module, "collector", collector)
        return memory

    return install


def post(client: Client, body: Any, **headers: str) -> Any:
    return client.http.post(
        "/events", headers={"Content-Type": "text/plain", **headers}, body=body_bytes(body)
    )


def stored(sink: MemorySink) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.lines()]


def test_every_record_gets_the_server_fields(client: Client, use: Any) -> None:
    sink = use()
    body = batch(event(), event(context={"screen": "wide"}), event())
    response = post(
        client, body, **{"User-Agent": CHROME_WINDOWS, "CloudFront-Viewer-Country": "FR"}
    )
    assert response.json_body == {"accepted": 3, "rejected": []}
    records = stored(sink)
    assert len(records) == 3
    for record in records:
        assert {key: record[key] for key in SCHEMA["definitions"]["serverFields"]["required"]} == {
            "serverTimestamp": record["serverTimestamp"],
            "uaBrowser": "Chrome",
            "uaBrowserVersion": "131",
            "uaOs": "Windows",
            "uaOsVersion": "10",
            "uaDeviceType": "desktop",
            "country": "FR",
            "isBot": False,
            "botReason": "",
        }
        assert "userAgent" not in record
        assert record["device"] == "my-device"  # the context is still merged
        SERVER_FIELDS.validate({key: record[key] for key in record if key in SERVER_PROPERTIES})
    assert records[1]["screen"] == "wide"


def test_header_names_in_any_letter_case(client: Client, use: Any) -> None:
    sink = use()
    post(client, batch(), **{"user-agent": GOOGLEBOT, "cloudfront-viewer-country": "JP"})
    [record] = stored(sink)
    assert (record["uaBrowser"], record["isBot"], record["country"]) == ("Googlebot", True, "JP")
    assert record["botReason"] == "crawler-list"


def test_without_the_cloudfront_header_country_is_empty(client: Client, use: Any) -> None:
    sink = use()
    post(client, batch(), **{"User-Agent": CHROME_WINDOWS})
    [record] = stored(sink)
    assert record["country"] == ""


def test_webdriver_in_the_batch_context_is_read_not_stored(client: Client, use: Any) -> None:
    sink = use()
    body = batch(context={"device": "d", "webdriver": True})
    post(client, body, **{"User-Agent": CHROME_WINDOWS})
    [record] = stored(sink)
    assert record["isBot"] is True and record["uaDeviceType"] == "bot"
    assert record["botReason"] == "automation"
    assert "webdriver" not in record
    assert record["device"] == "d"


def test_drop_bots_stores_nothing_and_says_so(
    client: Client, use: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sink = use(drop_bots=True)
    caplog.set_level(logging.INFO, logger=app_module.app.log.name)
    response = post(client, batch(event(), {"not": "an event"}), **{"User-Agent": GOOGLEBOT})
    assert response.status_code == 200  # the client must not resend
    assert response.json_body == {"accepted": 0, "dropped": 2, "rejected": []}
    assert sink.records == []
    [log] = [json.loads(r.getMessage()) for r in caplog.records if '"collect"' in r.getMessage()]
    assert (log["accepted"], log["dropped"], log["rejected"]) == (0, 2, 0)
    webdriver = post(client, batch(context={"webdriver": True}), **{"User-Agent": CHROME_WINDOWS})
    assert webdriver.json_body == {"accepted": 0, "dropped": 1, "rejected": []}
    human = post(client, batch(), **{"User-Agent": CHROME_WINDOWS})
    assert human.json_body == {"accepted": 1, "rejected": []}  # no "dropped" when none was
    assert len(sink.records) == 1


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        ("prometheus/2.18.1", "no-browser"),
        ("Mozilla/5.0 (compatible; anthropic-ai/1.0; +https://www.anthropic.com)", "crawler-list"),
        (CHROME_WINDOWS.replace("Chrome/", "HeadlessChrome/"), "automation"),
        ("Lynx/2.8.9rel.1 libwww-FM/2.14 SSL-MM/1.4.1 OpenSSL/1.1.1d", ""),
    ],
)
def test_drop_bots_drops_by_the_decision_stored_otherwise(
    client: Client, use: Any, user_agent: str, reason: str
) -> None:
    flagged = use()
    post(client, batch(), **{"User-Agent": user_agent})
    [record] = stored(flagged)
    assert (record["isBot"], record["botReason"]) == (reason != "", reason)
    dropping = use(drop_bots=True)
    answer = post(client, batch(), **{"User-Agent": user_agent})
    assert ("dropped" in answer.json_body) is (reason != "")
    assert len(dropping.records) == (0 if reason else 1)


def test_a_bots_bad_body_is_still_a_400_with_drop_bots(client: Client, use: Any) -> None:
    use(drop_bots=True)
    response = post(client, {"events": []}, **{"User-Agent": GOOGLEBOT})
    assert response.status_code == 400


def test_store_user_agent_keeps_the_raw_header(client: Client, use: Any) -> None:
    sink = use(store_user_agent=True)
    post(client, batch(), **{"User-Agent": CHROME_WINDOWS})
    [record] = stored(sink)
    assert record["userAgent"] == CHROME_WINDOWS


def test_context_keys_cannot_take_a_server_fields_name(client: Client, use: Any) -> None:
    use()
    for name in ("country", "IsBot", "uabrowser", "userAgent", "botreason"):
        response = post(client, batch(context={name: "x"}))
        assert response.status_code == 400, name
        assert "server-added field" in response.json_body["message"]


def test_the_app_reads_both_settings() -> None:
    enricher = app_module.collector._enricher
    assert enricher.store_user_agent is app_module.SETTINGS.store_user_agent
    assert enricher.drop_bots is app_module.SETTINGS.drop_bots


def test_the_csv_has_the_columns_the_readme_lists(client: Client, use: Any) -> None:
    sink = use(store_user_agent=True)
    post(client, batch(), **{"User-Agent": GOOGLEBOT, "CloudFront-Viewer-Country": "US"})
    rows, header, _, _ = run(source("raw", b"".join(sink.lines())))
    assert header[len(FIXED_COLUMNS) :] == [
        "appVersion",
        "botReason",
        "country",
        "derivedTimestamp",
        "eventId",
        "gitCommitSha",
        "isBot",
        "uaBrowser",
        "uaBrowserVersion",
        "uaDeviceType",
        "uaOs",
        "uaOsVersion",
        "userAgent",
        "attr_action",
        "attr_button",
    ]
    readme = " ".join((REPO_ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"`{', '.join(header[len(FIXED_COLUMNS) : -3])}`, `userAgent` when stored" in readme
    [row] = rows
    assert (row["isBot"], row["botReason"], row["uaDeviceType"], row["country"]) == (
        "true",
        "crawler-list",
        "bot",
        "US",
    )


def test_chalice_local_stores_the_fields_with_an_empty_country(
    chalice_local: tuple[str, Path],
) -> None:
    base, data_dir = chalice_local
    body = body_bytes(batch(event(eventId="enrich-local-1")))
    request = urllib.request.Request(
        base + "events",
        data=body,
        headers={"Content-Type": "text/plain", "User-Agent": CHROME_WINDOWS},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert json.loads(answer.read()) == {"accepted": 1, "rejected": []}
    [record] = [
        json.loads(line)
        for path in (data_dir / "raw").rglob("*.ndjson")
        for line in path.read_bytes().splitlines()
        if b"enrich-local-1" in line
    ]
    assert (record["uaBrowser"], record["isBot"], record["botReason"]) == ("Chrome", False, "")
    assert record["country"] == ""
