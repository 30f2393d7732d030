"""`python -m exporter delivery` over days of N events: wall time and peak RSS per size.

Generates, once per size (cached under bench/data/delivery-N/), one day of stored
records the way the route writes them (server fields, one gzip object per 50,000
records), in sessions of 20 numbered events: 1 % of the events are missing and 1 % are
sent twice. Then runs the command in its own process for each size: memory flat in the
number of events means the peak stays about the same as N grows.

    .venv/bin/python bench/bench_delivery.py [--events 100000 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_export import run_measured

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-11-27"
PER_SESSION = 20
PER_OBJECT = 50_000


def generate(directory: Path, events: int) -> tuple[int, int]:
    """Writes the day; returns (events stored once, numbers missing)."""
    rng = random.Random(events)
    folder = directory / "raw/2026/11/27"
    lines: list[bytes] = []
    objects = stored = missing = 0

    def spill() -> None:
        nonlocal objects
        hour = folder / f"{objects % 24:02d}"
        hour.mkdir(parents=True, exist_ok=True)
        (hour / f"events-{objects}.gz").write_bytes(gzip.compress(b"".join(lines), 1))
        objects += 1
        lines.clear()

    for number in range(events):
        session, seq = divmod(number, PER_SESSION)
        if rng.random() < 0.01 and 0 < seq < PER_SESSION - 1:
            missing += 1
            continue
        record = {
            "eventId": f"e-{number}",
            "timestamp": 1764237600000 + number,
            "sessionId": f"{session:08x}-7d1c-4a51-9c8e-3b1f2a4d5e6f",
            "metricName": "ContentElementInteraction",
            "value": None,
            "seq": seq + 1,
            "metricAttributes": {"action": "click"},
            "pagePath": "/pricing",
            "serverTimestamp": f"2026-11-27T{(number // 3600) % 24:02d}:00:00.{seq:03d}Z",
            "uaBrowser": rng.choice(["Chrome", "Firefox", "Safari"]),
            "uaDeviceType": "desktop",
        }
        line = json.dumps(record).encode() + b"\n"
        lines.append(line)
        stored += 1
        if rng.random() < 0.01:
            lines.append(line)
        if len(lines) >= PER_OBJECT:
            spill()
    if lines:
        spill()
    return stored, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print(f"{'events':>10} {'received':>10} {'gaps':>7} {'rate':>8} {'seconds':>8} {'peak MiB':>9}")
    for events in args.events:
        directory = ROOT / "bench" / "data" / f"delivery-{events}"
        expected_path = directory / "expected.json"
        if not expected_path.exists():
            print(f"generating {events} events ...", flush=True)
            stored, missing = generate(directory, events)
            expected_path.write_text(json.dumps({"received": stored, "gaps": missing}))
        expected = json.loads(expected_path.read_text())
        out = directory / "report.json"
        command = [sys.executable, "-m", "exporter", "delivery", "--date", DAY]
        command += ["--source", str(directory), "--json"]
        seconds, peak = run_measured(["sh", "-c", f'"$@" > {out}', "sh", *command])
        report = json.loads(out.read_text())
        assert report["received"] == expected["received"], (report["received"], expected)
        assert report["gaps"] == expected["gaps"], (report["gaps"], expected)
        print(
            f"{events:>10} {report['received']:>10} {report['gaps']:>7} "
            f"{report['rate'] * 100:>7.3f}% {seconds:>8.1f} {peak:>9.1f}"
        )


if __name__ == "__main__":
    main()
