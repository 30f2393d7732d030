"""No request makes the server store more than 8 times its body's
bytes in raw/, nor (separately) in rejected/, whatever its shape; the browser client's
honest batches are never refused. Through the HTTP route, into real local folders."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from bench.bench_amplification import client_event
from chalicelib.ingest.budget import STORED_BYTES_PER_BODY_BYTE, stored_budget
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.enrich import Enricher
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import LocalDirectorySink

REVIEW_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) " + "A" * 580
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
MINIMAL = {"timestamp": 1, "sessionId": "s", "metricName": "m"}


def compact(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def folder_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


class Stored:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def raw(self) -> int:
        return folder_bytes(self.root / "raw")

    @property
    def rejected(self) -> int:
        return folder_bytes(self.root / "rejected")

    def rejects(self) -> list[dict[str, Any]]:
        lines = [
            line
            for item in sorted((self.root / "rejected").rglob("*"))
            if item.is_file()
            for line in item.read_bytes().splitlines()
        ]
        return [json.loads(line) for line in lines]


@pytest.fixture
def route(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., tuple[Client, Stored]]]:
    """The app's POST /events storing into tmp_path's raw/ and rejected/."""
    clients: list[Client] = []

    def install(store_user_agent: bool = False) -> tuple[Client, Stored]:
        collector = Collector(
            BatchValidator(app_module.SETTINGS.limits),
            lambda: LocalDirectorySink(tmp_path),
            app_module.app.log,
            reject_sink_factory=lambda: LocalDirectorySink(tmp_path, "rejected/"),
            enricher=Enricher(store_user_agent=store_user_agent),
        )
        monkeypatch.setattr(app_module, "collector", collector)
        client = Client(app_module.app, stage_name="dev")
        clients.append(client)
        return client, Stored(tmp_path)

    yield install
    for client in clients:
        client.__exit__(None, None, None)


def post(client: Client, raw: bytes, user_agent: str = "curl/8.5.0") -> Any:
    headers = {"Content-Type": "text/plain", "User-Agent": user_agent}
    return client.http.post("/events", headers=headers, body=raw)


def test_a_large_context_times_500_events_is_a_413_that_stores_nothing_in_raw(
    route: Callable[..., tuple[Client, Stored]],
) -> None:
    # The review's case: 52,580 bytes wrote 14,164,500 bytes to raw/ (269 times).
    client, stored = route()
    context = {f"k{i}": "x" * 4000 for i in range(7)}
    raw = compact({"context": context, "events": [MINIMAL] * 500})
    answer = post(client, raw)
    assert answer.status_code == 413
    message = answer.json_body["message"]
    assert f"over the limit of 8 times its {len(raw):,}-byte body" in message
    assert "by 13," in message and "context is copied into each of its 500 events" in message
    assert stored.raw == 0
    assert 0 < stored.rejected <= STORED_BYTES_PER_BODY_BYTE * len(raw)
    [kept] = stored.rejects()
    assert kept["status"] == 413 and kept["reason"] == message


@pytest.mark.parametrize(
    ("store_user_agent", "user_agent"),
    [(False, "curl/8.5.0"), (True, REVIEW_USER_AGENT)],
    ids=["rejects", "rejects-with-stored-user-agent"],
)
def test_500_rejected_zeros_keep_at_most_8_times_the_body(
    route: Callable[..., tuple[Client, Stored]], store_user_agent: bool, user_agent: str
) -> None:
    # The review's cases: 2,032 bytes wrote 664,390 (327 times), 453 times with the UA.
    client, stored = route(store_user_agent)
    raw = compact({"context": {"c": "x" * 992}, "events": [0] * 500})
    answer = post(client, raw, user_agent)
    assert answer.status_code == 200 and answer.json_body["rejectedCount"] == 500
    assert stored.raw == 0
    assert stored.rejected <= 8 * len(raw)
    kept = stored.rejects()
    # The context is kept once; the others point at it; the first ones that fit are kept.
    assert kept[0]["context"] == {"c": "x" * 992}
    assert all(r["contextOf"] == 0 and r["event"] == 0 for r in kept[1:])
    assert [r["index"] for r in kept] == list(range(len(kept))) and len(kept) > 5
    if store_user_agent:
        assert kept[0]["server"]["userAgent"] == REVIEW_USER_AGENT[:512]


SHAPES = {
    "tiny events, no context": {"events": [MINIMAL] * 500},
    "tiny events, a 1 KiB context": {"context": {"c": "x" * 1000}, "events": [MINIMAL] * 500},
    "one event, a 4 KiB context": {"context": {"c": "x" * 4000}, "events": [MINIMAL]},
    "32 context keys": {"context": {f"k{i}": "x" * 400 for i in range(32)}, "events": [0] * 60},
    "one tiny event": {"events": [MINIMAL]},
    "tiny rejected events": {"events": [{}] * 500},
    "rejected events, a context": {"context": {"c": "y" * 3000}, "events": [{"a": 1}] * 500},
    "mixed": {"context": {"c": "z" * 900}, "events": [MINIMAL, 0] * 250},
    "an empty body refused whole": None,
    "a tiny body refused whole": [],
}


@pytest.mark.parametrize("store_user_agent", [False, True], ids=["", "stored-ua"])
@pytest.mark.parametrize("shape", SHAPES)
def test_no_shape_stores_more_than_8_times_its_body(
    route: Callable[..., tuple[Client, Stored]], shape: str, store_user_agent: bool
) -> None:
    client, stored = route(store_user_agent)
    body = SHAPES[shape]
    raw = b"" if body is None else compact(body)
    answer = post(client, raw, '"' * 700)  # escapes make each stored character two bytes
    assert answer.status_code in (200, 400, 413)
    assert stored.raw <= stored_budget(len(raw))
    assert stored.rejected <= stored_budget(len(raw))
    # The floor: a body counts as at least 128 bytes, so a tiny body's reason is kept.
    assert stored_budget(len(raw)) == 8 * max(len(raw), 128)


@pytest.mark.parametrize("store_user_agent", [False, True])
def test_the_clients_honest_batch_is_never_refused(
    route: Callable[..., tuple[Client, Stored]], store_user_agent: bool
) -> None:
    # The rule's worst case for the browser client: 25 of its smallest events and a
    # context just under 1 KiB (docs/SPEC.md gives the sizes from which it refuses).
    client, stored = route(store_user_agent)
    raw = compact(
        {
            "sentAt": 1707782431000,
            "context": {"c": "x" * 1013},
            "events": [client_event(n) for n in range(25)],
        }
    )
    answer = post(client, raw, CHROME)
    assert answer.status_code == 200 and answer.json_body["accepted"] == 25
    assert 6 * len(raw) < stored.raw <= 8 * len(raw)
