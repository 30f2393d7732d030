"""In-process cost per event of POST /events, beside the json.loads + json.dumps floor.

Measures parse → validate → enrich → serialize → in-memory sink (the Collector the
route calls, with the headers API Gateway hands it), for batches of 25 and 500 events
shaped like the spec's example; the floor is measured in the same run, and the ratio is
route / floor (issue 25's target: at most 1.8). Then the route by stage, so that the next
regression shows where: parse (read_body: orjson and the strict-JSON scan), validate (the
direct check of each event and its attributes), enrich (the server's fields, once per
request), serialize (the rest of BatchValidator.process: the stored lines) and answer (the
rest of the collector: sink, counts, the log line).

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

import orjson

from chalicelib.config import Limits
from chalicelib.ingest.body import read_body
from chalicelib.ingest.collect import Collector, lean_log_records
from chalicelib.ingest.enrich import Enricher
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


SLICES = 10


def per_call_seconds(*actions: Callable[[], object], min_seconds: float = 1.5) -> tuple[float, ...]:
    """CPU seconds per call of each action (the best of SLICES slices), the actions' slices
    taken in turn: on a shared machine the load then weighs on all of them alike, and CPU
    time leaves out the time the process waits for a core."""
    for action in actions:
        action()  # warm up
    best = [float("inf")] * len(actions)
    for _ in range(SLICES):
        for index, action in enumerate(actions):
            calls, started = 0, time.process_time()
            while (elapsed := time.process_time() - started) < min_seconds / SLICES:
                action()
                calls += 1
            best[index] = min(best[index], elapsed / calls)
    return tuple(best)


def main() -> None:
    # Logging stays on (one JSON line per request, as in production), into a null handler.
    lean_log_records()  # as app.py does
    logger = logging.getLogger("bench")
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    sink = MemorySink()
    validator = BatchValidator(Limits())
    # Off, every event would take the compiled validator: the schema changed its form.
    assert validator.shape.enabled, "the direct check (chalicelib/ingest/shape.py) is off"
    collector = Collector(validator, lambda: sink, logger)
    print(f"{'batch':>6} {'route µs/event':>15} {'floor µs/event':>15} {'ratio':>6}")
    stages: dict[int, dict[str, float]] = {}
    for events in (25, 500):
        body = make_body(events)

        def route(body: bytes = body, expected: int = events) -> object:
            sink.records.clear()
            answer = collector.collect(body, HEADERS["content-type"], "bench", HEADERS)
            assert answer.status == 200 and answer.body["accepted"] == expected, answer
            return answer

        def floor(body: bytes = body) -> object:
            return json.dumps(json.loads(body))

        route_us, floor_us = (seconds / events * 1e6 for seconds in per_call_seconds(route, floor))
        print(f"{events:>6} {route_us:>15.2f} {floor_us:>15.2f} {route_us / floor_us:>6.2f}")
        stages[events] = stage_costs(validator, body, events, route_us)
    print("\nby stage, µs/event (serialize and answer by difference: within ±0.3 of the noise)")
    names = list(stages[25])
    print(f"{'batch':>6} " + " ".join(f"{name:>9}" for name in names))
    for events, costs in stages.items():
        print(f"{events:>6} " + " ".join(f"{costs[name]:>9.2f}" for name in names))


def stage_costs(
    validator: BatchValidator, body: bytes, events: int, route_us: float
) -> dict[str, float]:
    """The route's stages, each timed alone (shorter runs than the totals). validate and
    enrich run on one parsed body, again and again (its objects stay in the CPU's cache);
    serialize is what else BatchValidator.process takes of a freshly parsed body (so it
    also holds what the cache misses cost the checks); answer is what else the route takes."""
    parsed = orjson.loads(body)
    enricher = Enricher()
    now_ms = parsed["sentAt"] + 500

    def read() -> object:
        return read_body(body, HEADERS["content-type"], validator.limits)

    def validate() -> None:
        for event in parsed["events"]:
            validator.shape.keys(event)
            validator._attributes.keys(event["metricAttributes"])

    def enrich() -> object:
        return enricher.fields(HEADERS, {})

    def load() -> object:
        return orjson.loads(body)

    def process() -> object:
        return validator.process(
            orjson.loads(body), now_ms, lambda context: enricher.fields(HEADERS, context)
        )

    seconds = per_call_seconds(read, validate, enrich, load, process, min_seconds=0.5)
    parse, checks, fields, loading, processing = (each / events * 1e6 for each in seconds)
    processed = processing - loading
    return {
        "parse": parse,
        "validate": checks,
        "enrich": fields,
        "serialize": processed - checks - fields,
        "answer": route_us - parse - processed,
    }


if __name__ == "__main__":
    main()
