"""A client for a running dev API (`make dev`): steady posts with bursts, never retried.

What the local-development checks share: ``tests/test_make_dev.py`` runs it for a few
seconds against the real ``make dev``; run by hand it is the one-minute check::

    .venv/bin/python bench/dev_client.py http://127.0.0.1:8000 --seconds 60 \\
        --data-dir analytics_data   # then Ctrl-C on make dev: raw/ and the parts are checked

Every POST is sent once (a connection error or a non-200 is a failure, never
retried). ``--data-dir`` checks, after the server stopped, that every accepted
event is once in ``raw/`` and once in the CSV parts.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import http.client
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


def body_of(tag: str, events: int, pad: int = 0) -> bytes:
    """A batch of ``events`` events with ids ``<tag>-<n>``."""
    now = int(time.time() * 1000)
    return json.dumps(
        {
            "sentAt": now,
            "context": {"device": "dev-client", "deviceCodename": "bench", "language": "en_us"},
            "events": [
                {
                    "eventId": f"{tag}-{n}",
                    "timestamp": now - 10,
                    "sessionId": "dev-client-session",
                    "metricName": "ContentElementInteraction",
                    "value": n,
                    "demoContentId": f"Button-{n}",
                    "metricAttributes": {"action": "click", "n": n, "pad": "x" * pad},
                }
                for n in range(events)
            ],
        }
    ).encode()


def post(base: str, body: bytes, timeout: float = 30) -> tuple[int, float]:
    """(status, seconds) of one POST /events; status 0 for a connection error."""
    parts = urlsplit(base)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("POST", "/events", body, {"Content-Type": "text/plain"})
        answer = connection.getresponse()
        answer.read()
        status = answer.status
    except OSError:
        status = 0
    finally:
        connection.close()
    return status, time.perf_counter() - started


@dataclass
class Run:
    posts: int = 0
    failures: list[str] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    slowest: float = 0.0

    def add(self, tag: str, events: int, status: int, seconds: float) -> None:
        self.posts += 1
        self.slowest = max(self.slowest, seconds)
        if status == 200:
            self.accepted.update(f"{tag}-{n}" for n in range(events))
        else:
            self.failures.append(f"{tag}: status {status or 'connection error'}")


def steady(
    base: str,
    seconds: float,
    *,
    interval: float = 0.2,
    events: int = 5,
    burst_every: float = 10.0,
    burst: int = 10,
) -> Run:
    """One POST of ``events`` every ``interval`` s; every ``burst_every`` s also ``burst``
    concurrent POSTs of 25 events each."""
    run = Run()
    prefix = uuid.uuid4().hex[:8]
    started = time.monotonic()
    next_burst = started + burst_every
    count = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=burst) as pool:
        while (now := time.monotonic()) - started < seconds:
            tag = f"{prefix}-s{count}"
            run.add(tag, events, *post(base, body_of(tag, events)))
            count += 1
            if burst and now >= next_burst:
                next_burst += burst_every
                tags = [f"{prefix}-b{count}-{n}" for n in range(burst)]
                answers = pool.map(lambda tag: post(base, body_of(tag, 25)), tags)
                for tag, (status, took) in zip(tags, answers, strict=True):
                    run.add(tag, 25, status, took)
            time.sleep(max(0.0, started + count * interval - time.monotonic()))
    return run


def stored_ids(data_dir: Path) -> tuple[list[str], list[str]]:
    """Every eventId in ``raw/`` and in the CSV parts, repeats kept."""
    raw = [
        json.loads(line)["eventId"]
        for path in sorted((data_dir / "raw").rglob("*.ndjson"))
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]
    parts = [
        row["eventId"]
        for path in sorted((data_dir / "csv" / "parts").rglob("*.csv"))
        for row in csv.DictReader(path.open(newline="", encoding="utf-8"))
    ]
    return raw, parts


def check_stored(run: Run, data_dir: Path) -> list[str]:
    """Problems with what landed: each accepted event once in raw/ and once in the parts."""
    raw, parts = stored_ids(data_dir)
    problems = []
    for name, ids in (("raw/", raw), ("the CSV parts", parts)):
        mine = [i for i in ids if i in run.accepted]
        if len(mine) != len(set(mine)):
            problems.append(f"{len(mine) - len(set(mine))} accepted event(s) twice in {name}")
        if missing := run.accepted - set(mine):
            problems.append(f"{len(missing)} accepted event(s) not in {name}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the API, e.g. http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--data-dir", type=Path, help="check raw/ and parts here (server stopped)")
    args = parser.parse_args()
    run = steady(args.base.rstrip("/"), args.seconds)
    print(
        f"{run.posts} POSTs, {len(run.failures)} failed, {len(run.accepted)} events accepted, "
        f"slowest POST {run.slowest * 1000:.0f} ms"
    )
    for failure in run.failures[:10]:
        print("  " + failure)
    if args.data_dir is not None:
        print("stop the server now (Ctrl-C on make dev); the files are checked once it is down")
        while post(args.base, b"")[0]:  # any answer: still up
            time.sleep(0.5)
        raw, parts = stored_ids(args.data_dir)
        problems = check_stored(run, args.data_dir)
        print(f"raw/: {len(raw)} events; CSV parts: {len(parts)} rows")
        print("\n".join(problems) or "every accepted event is once in raw/ and once in the parts")
        return 1 if problems or run.failures else 0
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
