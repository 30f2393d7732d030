"""Replay of N stored rejects from a local folder: wall time and peak RSS.

Generates (once, cached under bench/data/) N rejects the way the route keeps them:
batches of 25 events posted through the Collector with a strict limit (attributes
nested two levels, MAX_ATTRIBUTE_DEPTH=1), so every event is rejected and kept under
rejected/ by the local sink. Then, each in its own process, `python -m exporter
replay` with the default limits (depth 5, so all of them are valid now): a dry run,
the replay itself (into raw/, plus the CSV part of what it wrote, as the dev stage
does), and a second replay (every reject already in the ledger).

    .venv/bin/python bench/bench_replay.py [--rejects 100000]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_export import generate_once, run_measured
from chalicelib.config import Limits
from chalicelib.ingest.collect import Collector
from chalicelib.ingest.validate import BatchValidator
from chalicelib.sinks import LocalDirectorySink, MemorySink

ROOT = Path(__file__).resolve().parent.parent
PER_BATCH = 25


def generate(directory: Path, rejects: int) -> None:
    logger = logging.getLogger("bench-replay")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    sink = LocalDirectorySink(directory, "rejected/")
    collector = Collector(
        BatchValidator(Limits(max_attribute_depth=1)),
        MemorySink,
        logger,
        reject_sink_factory=lambda: sink,
    )
    now = int(datetime.now(UTC).timestamp() * 1000)
    for first in range(0, rejects, PER_BATCH):
        events = [
            {
                # Every other event sent without an eventId: the replay derives one.
                **({"eventId": str(uuid.uuid4())} if n % 2 else {}),
                "timestamp": now - 1000 + n,
                "sessionId": "0190b6f2-7d1c-7a51-9c8e-3b1f2a4d5e6f",
                "metricName": "ContentElementInteraction",
                "value": None,
                "demoContentId": f"ButtonClicked-{n}",
                "metricAttributes": {"action": "click", "target": {"id": n, "kind": "button"}},
            }
            for n in range(first, min(first + PER_BATCH, rejects))
        ]
        body = {
            "sentAt": now,
            "context": {"device": "my-device", "language": "en_us", "appVersion": "1.0.0"},
            "events": events,
        }
        collector.collect(json.dumps(body).encode(), "application/json", str(uuid.uuid4()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rejects", type=int, default=100_000)
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = ROOT / "bench" / "data" / f"rejects-{args.rejects}"
    if args.generate_only:
        generate(data, args.rejects)
        return
    generate_once(
        data / "rejected",
        [sys.executable, __file__, "--rejects", str(args.rejects), "--generate-only"],
        f"{args.rejects:,} rejects",
    )
    for made in ("raw", "csv", "replayed"):  # what an earlier run wrote
        shutil.rmtree(data / made, ignore_errors=True)
    days = sorted({p.relative_to(data / "rejected").parts[:3] for p in data.rglob("*.ndjson")})
    first, last = ("-".join(days[0]), "-".join(days[-1]))
    stored = sum(p.stat().st_size for p in (data / "rejected").rglob("*.ndjson"))
    replay = [sys.executable, "-m", "exporter", "replay", "--date", first, "--to-date", last]
    replay += ["--source", str(data), "--project-dir", str(data)]
    print(f"rejects: {args.rejects:,}  stored: {stored / 2**20:.1f} MiB under rejected/")
    print(f"{'':26} {'seconds':>8} {'rejects/s':>10} {'peak RSS MiB':>13}")
    for name, extra in (
        ("replay --dry-run", ["--dry-run"]),
        ("replay (into raw/ + part)", []),
        ("replay again (ledger)", []),
    ):
        seconds, rss = run_measured([*replay, *extra])
        print(f"{name:26} {seconds:8.2f} {args.rejects / seconds:10,.0f} {rss:13.0f}")
    written = sum(1 for p in (data / "raw").rglob("*.ndjson") for _ in p.open("rb"))
    print(f"lines in raw/ after both replays: {written:,} (expected {args.rejects:,})")


if __name__ == "__main__":
    main()
