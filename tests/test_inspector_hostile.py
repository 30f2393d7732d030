"""The dev inspector holds no more than its bound says (JSON bytes, not
parsed objects), and only the stage's origins may read or clear it (with *, pages on this
machine only)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.app import Chalice
from chalice.test import Client

import app as app_module
from bench.bench_inspector_memory import body as review_body
from chalicelib.dev.inspector import MAX_INSPECTOR_BYTES, Inspector, inspector_routes
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import MemorySink
from tests.factories import batch, body_bytes, event

EVIL = "https://evil.example"


@pytest.fixture
def dev(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Client, Inspector]]:
    """The app's own inspector and routes (the dev stage, ALLOWED_ORIGINS=*)."""
    inspector = app_module.inspector
    assert inspector is not None
    inspector.clear()
    collector = Collector(
        BatchValidator(app_module.SETTINGS.limits),
        MemorySink,
        app_module.app.log,
        observers=[inspector],
    )
    monkeypatch.setattr(app_module, "collector", collector)
    with Client(app_module.app, stage_name="dev") as client:
        yield client, inspector
    inspector.clear()


def request(client: Client, method: str, path: str, origin: str | None) -> Any:
    headers = {"Access-Control-Request-Method": "DELETE"} if method == "OPTIONS" else {}
    if origin is not None:
        headers["Origin"] = origin
    return client.http.request(method, path, headers=headers, body=b"")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_dev/events"),
        ("GET", "/_dev/rejected"),
        ("DELETE", "/_dev/events"),
        ("OPTIONS", "/_dev/events"),
    ],
)
@pytest.mark.parametrize("origin", [EVIL, "http://localhost.evil.example:8000", "null"])
def test_another_sites_page_may_not_read_or_clear_the_dev_inspector(
    dev: tuple[Client, Inspector], method: str, path: str, origin: str
) -> None:
    client, inspector = dev
    client.http.post(
        "/events",
        headers={"Content-Type": "text/plain"},
        body=body_bytes(batch(event(eventId="kept"), {"metricName": "M"})),
    )
    answer = request(client, method, path, origin)
    assert answer.status_code == 403
    assert "may not read or clear the inspector" in json.loads(answer.body)["message"]
    assert "Access-Control-Allow-Origin" not in answer.headers
    # Nothing was cleared: the developer's own tools still see both lists.
    assert [e["eventId"] for e in json.loads(inspector.events_json(5))["events"]] == ["kept"]
    assert len(inspector.rejections(5)) == 1


@pytest.mark.parametrize(
    "origin", ["http://localhost:5173", "http://127.0.0.1:8001", "http://[::1]:3000", None]
)
def test_pages_on_this_machine_and_tools_without_origin_may(
    dev: tuple[Client, Inspector], origin: str | None
) -> None:
    client, _ = dev
    for method in ("GET", "DELETE", "OPTIONS"):
        answer = request(client, method, "/_dev/events", origin)
        assert answer.status_code in (200, 204)
        assert answer.headers.get("Access-Control-Allow-Origin") == origin
        assert answer.headers.get("Access-Control-Allow-Origin") != "*"


def test_with_a_list_of_origins_the_inspector_answers_those_only() -> None:
    app = Chalice(app_name="inspector-list")
    app.register_blueprint(inspector_routes(Inspector(), ("https://app.example.com",)))
    with Client(app) as client:
        ours = request(client, "DELETE", "/_dev/events", "https://app.example.com")
        local = request(client, "DELETE", "/_dev/events", "http://localhost:5173")
    assert ours.status_code == 200
    assert ours.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert local.status_code == 403


def test_memory_held_stays_within_the_bound_over_the_reviews_case(
    dev: tuple[Client, Inspector],
) -> None:
    # The review: 8 POSTs of ~1 MiB, 125 rejected events each: RSS 65 -> 259 MB, because
    # the bound counted JSON bytes while the inspector kept parsed objects.
    client, inspector = dev
    bodies = [review_body(n) for n in range(8)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for raw in bodies:
            answer = client.http.post("/events", headers={"Content-Type": "text/plain"}, body=raw)
            assert answer.json_body["rejectedCount"] == 125
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(inspector.rejections(1000)) == 1000
    kept_json = sum(len(json.dumps(item)) for item in inspector.rejections(1000))
    assert 7_000_000 < kept_json < MAX_INSPECTOR_BYTES
    assert held < kept_json * 1.5, f"{held:,} bytes held for {kept_json:,} bytes of JSON"
