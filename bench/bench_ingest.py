"""In-process cost per event of POST /events, beside the json.loads + json.dumps floor.

Measures parse → validate → enrich → serialize → in-memory sink (the Collector the
route calls, with the headers API Gateway hands it), for batches of 25 and 500 events
shaped like the spec's example.

    .venv/bin/python bench/bench_ingest.py
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.config import Limits
from chalicelib.ingest.collect import Collector, lean_log_records
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import MemorySink

# What an edge-optimized API Gateway passes on from a current desktop Chrome.
HEADERS = {
    "content-type": "text/plain;charset=UTF-8",
    "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "cloudfront-viewer-country": "DE",
}


def make_body(events: int) -> bytes:
    now = 1707782431000
    return json.dumps(
        {
            "sentAt": now,
            "context": {
                "device": "my-device",
                "deviceCodename": "my-code",
                "language": "en_us",
                "appVersion": "1.0.0",
                "gitCommitSha": "abc123",
            },
            "events": [
                {
                    "eventId": str(uuid.uuid4()),
                    "timestamp": now - 1000 + i,
                    "sessionId": "0190b6f2-7d1c-7a51-9c8e-3b1f2a4d5e6f",
                    "metricName": "ContentElementInteraction",
                    "value": None if i % 2 else 12.5,
                    "demoContentId": f"ButtonClicked-{i}",
                    "metricAttributes": {"action": "click", "button": "submit", "n": i},
                }
                for i in range(events)
            ],
        }
    ).encode()


def per_call_seconds(action: Callable[[], object], min_seconds: float = 1.5) -> float:
    action()  # warm up
    best = float("inf")
    for _ in range(5):
        calls, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < min_seconds / 5:
            action()
            calls += 1
        best = min(best, elapsed / calls)
    return best


def main() -> None:
    # Logging stays on (one JSON line per request, as in production), into a null handler.
    lean_log_records()  # as app.py does
    logger = logging.getLogger("bench")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    sink = MemorySink()
    collector = Collector(BatchValidator(Limits()), lambda: sink, logger)
    print(f"{'batch':>6} {'route µs/event':>15} {'floor µs/event':>15} {'ratio':>6}")
    for events in (25, 500):
        body = make_body(events)

        def route(body: bytes = body, expected: int = events) -> object:
            sink.records.clear()
            answer = collector.collect(body, HEADERS["content-type"], "bench", HEADERS)
            assert answer.status == 200 and answer.body["accepted"] == expected, answer
            return answer

        def floor(body: bytes = body) -> object:
            return json.dumps(json.loads(body))

        route_us = per_call_seconds(route) / events * 1e6
        floor_us = per_call_seconds(floor) / events * 1e6
        print(f"{events:>6} {route_us:>15.2f} {floor_us:>15.2f} {route_us / floor_us:>6.2f}")


if __name__ == "__main__":
    main()
