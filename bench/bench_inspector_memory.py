"""The dev inspector's memory: server RSS over the review's case.

Starts a real ``chalice local --no-autoreload --stage dev`` (as ``make dev`` runs it) with
a temporary data folder, reads the server's RSS, posts 8 bodies of about 1 MiB, each of
125 rejected events of just under 8 KiB (lists of short strings: what costs a Python
process the most per byte of JSON), and reads the RSS again; then GETs
``/_dev/rejected?limit=1000`` and reads it once more.

    .venv/bin/python bench/bench_inspector_memory.py [--posts 8]

The review measured 65 → 259 MB before the inspector kept JSON bytes (its bound counted
JSON bytes while it kept parsed objects).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_dev_post import start_api
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
EVENTS = 125


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def body(post: int) -> bytes:
    events = [
        {
            "eventId": f"p{post}-e{n}",
            "timestamp": 1707782430123,
            "sessionId": "s",
            "metricName": "Rejected",
            "value": "high",  # not a number: every event is rejected
            "metricAttributes": {"l": [f"{post}{n}{i}"[-4:] for i in range(1130)]},
        }
        for n in range(EVENTS)
    ]
    return json.dumps({"events": events}, separators=(",", ":")).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=8)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="inspector-memory-") as data:
        api, _ = start_api(ROOT, Path(data), port)
        try:
            base = f"http://127.0.0.1:{port}"
            time.sleep(1)
            before = rss_mib(api.pid)
            sizes = []
            for post in range(args.posts):
                raw = body(post)
                sizes.append(len(raw))
                request = urllib.request.Request(
                    f"{base}/events", data=raw, headers={"Content-Type": "text/plain"}
                )
                with urllib.request.urlopen(request, timeout=60) as answer:
                    assert json.load(answer)["rejectedCount"] == EVENTS
            after_posts = rss_mib(api.pid)
            with urllib.request.urlopen(f"{base}/_dev/rejected?limit=1000", timeout=60) as answer:
                shown = len(json.load(answer)["rejected"])
            after_get = rss_mib(api.pid)
        finally:
            api.terminate()
            api.wait(timeout=30)
    print(
        f"{args.posts} POSTs of {min(sizes):,}-{max(sizes):,} bytes, {EVENTS} rejected events each"
    )
    print(f"server RSS before: {before:.0f} MiB")
    print(f"after the POSTs:   {after_posts:.0f} MiB (+{after_posts - before:.0f})")
    print(
        f"after GET /_dev/rejected ({shown} shown): {after_get:.0f} MiB (+{after_get - before:.0f})"
    )


if __name__ == "__main__":
    main()
