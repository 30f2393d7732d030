"""A day of a million synthetic events → `python -m exporter report`: wall time and peak RSS.

Generates (once, cached under bench/data/report/) a day shaped like real traffic:
sessions with a landing referrer and UTM source, page paths, browsers, OS, device
types and countries as the server sets them, bots with a ``botReason``, a per-session
``seq`` with a few events lost, 0.5 % retried duplicates, and rejects under
``rejected/``; then runs the report in its own process (``os.wait4`` gives its peak).

    .venv/bin/python bench/bench_report.py [--events 1000000]
    .venv/bin/python bench/bench_report.py --generate DIR --events 20000   # data only

The target is under 60 s for a million events on the 2-core machine.
"""

from __future__ import annotations

import argparse
import gzip
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-11-27"
OBJECTS_PER_HOUR = 2
PAGES = ["/", "/pricing", "/docs", "/docs/install", "/blog", "/blog/launch", "/signup", "/login"]
PAGES += [f"/product/{n}" for n in range(40)]
PAGE_WEIGHTS = [1 / (rank + 1) for rank in range(len(PAGES))]  # a few pages get most views
REFERRERS = ["", "", "", "https://www.google.com/", "https://news.ycombinator.com/item"]
REFERRERS += ["https://duckduckgo.com/", "https://github.com/owned/analytics", "https://t.co/x"]
UTM = ["", "", "", "newsletter", "twitter", "github", "hn"]
BROWSERS = [("Chrome", "Windows", "desktop"), ("Chrome", "Android", "mobile")]
BROWSERS += [("Safari", "iOS", "mobile"), ("Safari", "Mac OS X", "desktop")]
BROWSERS += [("Firefox", "Linux", "desktop"), ("Edge", "Windows", "desktop")]
BROWSERS += [("Safari", "iOS", "tablet"), ("Samsung Internet", "Android", "mobile")]
COUNTRIES = ["DE", "US", "FR", "GB", "JP", "BR", "IN", "NL", "", "SE", "CA", "ES"]
METRICS = ["PageView", "ContentElementInteraction", "ContentPlayDuration", "Search", "SignUp"]
METRICS += ["ScrollDepth", "Outbound", "Error"]
BOT_REASONS = ["crawler: Googlebot", "headless browser", "webdriver", "crawler: curl"]


def _session(rng: random.Random) -> dict[str, object]:
    browser, os_name, device = rng.choice(BROWSERS)
    return {
        "sessionId": f"s-{rng.getrandbits(64):016x}",
        "referrer": rng.choice(REFERRERS),
        "utm_source": rng.choice(UTM),
        "uaBrowser": browser,
        "uaOs": os_name,
        "uaDeviceType": device,
        "country": rng.choice(COUNTRIES),
        "isBot": False,
        "seq": 0,
    }


def generate(directory: Path, events: int, day: str = DAY, seed: int = 11) -> None:
    """``events`` stored records of ``day`` (and duplicates) plus some rejects."""
    rng = random.Random(seed)
    year, month, dom = day.split("-")
    weights = [1 + math.sin(math.pi * (h - 6) / 12) if 6 <= h <= 23 else 0.3 for h in range(24)]
    scale = events / sum(weights)
    live: list[dict[str, object]] = []
    for hour in range(24):
        count = round(weights[hour] * scale)
        lines: list[bytes] = []
        for n in range(count):
            if not live or rng.random() < 0.08:
                session = _session(rng)
                if rng.random() < 0.03:
                    session.update(isBot=True, botReason=rng.choice(BOT_REASONS))
                    session.update(uaDeviceType="bot", uaBrowser="Googlebot", uaOs="Other")
                live.append(session)
                if len(live) > 400:
                    live.pop(0)
            session = rng.choice(live)
            session["seq"] = int(str(session["seq"])) + 1
            if rng.random() < 0.01:
                continue  # a lost event: its seq number never arrives
            minute, second = n * 60 // max(count, 1), rng.randrange(60)
            record = {
                "eventId": f"e-{rng.getrandbits(64):016x}",
                "timestamp": 1_795_000_000_000 + hour * 3_600_000 + n,
                "metricName": rng.choice(METRICS),
                "value": None if n % 2 else round(rng.random() * 100, 2),
                "metricAttributes": {"action": rng.choice(["click", "scroll"])},
                "device": "web",
                "language": rng.choice(["en_us", "de_de", "ja_jp"]),
                "pagePath": rng.choices(PAGES, PAGE_WEIGHTS)[0],
                "serverTimestamp": f"{day}T{hour:02d}:{minute:02d}:{second:02d}.000Z",
                **session,
            }
            line = orjson.dumps(record)
            lines.append(line)
            if rng.random() < 0.005:
                lines.append(line)  # a retried delivery: the dedupe drops it
        folder = directory / "raw" / year / month / dom / f"{hour:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        per = -(-len(lines) // OBJECTS_PER_HOUR)
        for part in range(OBJECTS_PER_HOUR):
            data = b"\n".join(lines[part * per : (part + 1) * per]) + b"\n"
            (folder / f"events-{hour:02d}-{part}.gz").write_bytes(gzip.compress(data, 6))
        _rejects(directory / "rejected" / year / month / dom / f"{hour:02d}", rng, day, hour)


def _rejects(folder: Path, rng: random.Random, day: str, hour: int) -> None:
    reasons = [
        "event 0: 'value' must be a number or null",
        "event 0: 'sessionId' is a required property",
        "event too large: 40000 bytes (limit 32768)",
    ]
    records = []
    for n in range(rng.randrange(0, 6)):
        record: dict[str, object] = {
            "receivedAt": f"{day}T{hour:02d}:00:{n:02d}.000Z",
            "requestId": f"r-{hour}-{n}",
            "reason": rng.choice(reasons),
            "schemaVersion": "bench",
            "index": 0,
            "event": {"metricName": rng.choice(METRICS), "value": "oops"},
        }
        records.append(orjson.dumps(record))
    if hour % 6 == 0:
        records.append(
            orjson.dumps(
                {"receivedAt": f"{day}T{hour:02d}:00:00.000Z", "requestId": "b", "status": 400}
                | {"reason": "body is not JSON", "schemaVersion": "bench", "body": "{"}
            )
        )
    if records:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rejects.ndjson").write_bytes(b"\n".join(records) + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--generate", type=Path, help="only write the day's data into this folder")
    args = parser.parse_args()
    if args.generate is not None:
        generate(args.generate, args.events)
        return
    data = ROOT / "bench" / "data" / "report" / str(args.events)
    if not (data / "raw").is_dir():
        print(f"generating {args.events:,} events ...", flush=True)
        # In a child process: a big parent would inflate the report's measured peak RSS.
        generator = [sys.executable, __file__, "--generate", str(data), "--events"]
        subprocess.run([*generator, str(args.events)], check=True)
    out = data / "report.html"
    command = [sys.executable, "-m", "exporter", "report", "--date", DAY, "--source", str(data)]
    started = time.perf_counter()
    process = subprocess.Popen([*command, "--out", str(out)], cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        sys.exit(f"the report failed (status {status})")
    cpu = usage.ru_utime + usage.ru_stime  # the report's and its worker processes'
    print(
        f"report of {args.events:,} events: {seconds:.1f} s wall, {cpu:.1f} s CPU, "
        f"peak RSS {usage.ru_maxrss / 1024:.0f} MiB, {out.stat().st_size / 1024:.0f} KiB of HTML"
    )


if __name__ == "__main__":
    main()
