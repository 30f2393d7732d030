"""A day of synthetic events → CSV with the exporter, and with DuckDB as the reference.

Generates (once, cached under bench/data/) a day of N events in 10 gzip objects
shaped like the spec's examples, with nested attributes, duplicates from retries
and awkward strings; then converts it with `python -m exporter export` and with
DuckDB (`read_json` + `COPY ... TO csv`, one thread), each in its own process,
and reports wall time and peak RSS of each (os.wait4 gives a child's own peak).

    .venv/bin/python bench/bench_export.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
DAY = "2026-11-27"
OBJECTS = 10
AWKWARD = [
    "plain",
    "comma, inside",
    'quote " inside',
    "new\nline",
    "=SUM(A1:A9)",
    "-12",
    "ünïcødé ✓ 日本語",
    "emoji 🎉",
    "tab\tinside",
    "",
]


def generate(directory: Path, events: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    per_object = events // OBJECTS
    sessions = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2000)]
    base_ms = 1_795_000_000_000
    written: list[tuple[str, str]] = []
    for index in range(OBJECTS):
        hour = index * 2
        folder = directory / "raw" / "2026" / "11" / "27" / f"{hour:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for n in range(per_object):
            # 0.5% are retried deliveries of an earlier event (same sessionId and eventId).
            if written and rng.random() < 0.005:
                event_id, session_id = rng.choice(written[-5000:])
            else:
                event_id = str(uuid.UUID(int=rng.getrandbits(128)))
                session_id = rng.choice(sessions)
                written.append((event_id, session_id))
            timestamp = base_ms + index * 7_200_000 + n
            attributes: dict[str, object] = {
                "action": rng.choice(["click", "hover", "scroll"]),
                "button": rng.choice(AWKWARD),
            }
            if n % 3 == 0:
                attributes["nested"] = {"depth": n % 7, "path": ["a", "b"], "ok": True}
            if n % 5 == 0:
                attributes["durationMs"] = rng.random() * 10_000
            record = {
                "eventId": event_id,
                "timestamp": timestamp,
                "sessionId": session_id,
                "metricName": rng.choice(
                    ["ContentPageLoad", "ContentElementInteraction", "ContentPlayDuration"]
                ),
                "value": None if n % 2 else round(rng.random() * 100, 3),
                "demoContentId": f"ButtonClicked-{n % 500}",
                "metricAttributes": attributes,
                "device": "my-device",
                "deviceCodename": "my-code",
                "language": rng.choice(["en_us", "de_de", "ja_jp"]),
                "appVersion": "1.0.0",
                "gitCommitSha": "abc123",
                "serverTimestamp": f"2026-11-27T{hour:02d}:00:00.000Z",
                "derivedTimestamp": f"2026-11-27T{hour:02d}:00:00.000Z",
            }
            lines.append(orjson.dumps(record))
        data = b"\n".join(lines) + b"\n"
        (folder / f"events-{index}.gz").write_bytes(gzip.compress(data, compresslevel=6))


def generate_once(ready: Path, command: list[str], what: str) -> None:
    """Run the generating ``command`` unless ``ready`` (a folder it makes) exists; in a
    child process: a big parent would inflate the children's measured peak RSS."""
    if ready.is_dir():
        return
    print(f"generating {what} ...", flush=True)
    shutil.rmtree(ready.parent, ignore_errors=True)
    subprocess.run(command, check=True)


def run_measured(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


DUCKDB_SCRIPT = """
import duckdb, sys
con = duckdb.connect()
con.execute("SET threads=1")
con.execute(f"COPY (SELECT * FROM read_json('{sys.argv[1]}/raw/2026/11/27/*/*.gz', "
            f"format='newline_delimited')) TO '{sys.argv[2]}' (HEADER, DELIMITER ',')")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # v2: retries repeat (sessionId, eventId), the dedupe key.
    data = ROOT / "bench" / "data" / f"day-v2-{args.events}"
    if args.generate_only:
        generate(data, args.events)
        return
    generate_once(
        data / "raw",
        [sys.executable, __file__, "--events", str(args.events), "--generate-only"],
        f"{args.events:,} events in {OBJECTS} gzip objects",
    )
    raw_bytes = sum(p.stat().st_size for p in (data / "raw").rglob("*.gz"))
    out = data / "out"
    out.mkdir(exist_ok=True)
    python = sys.executable
    export = [python, "-m", "exporter", "export", "--date", DAY, "--source", str(data)]
    cpus = os.cpu_count() or 1
    one_s, one_mb = run_measured([*export, "--jobs", "1", "--out", str(out / "exporter-1.csv")])
    all_s, all_mb = run_measured([*export, "--out", str(out / "exporter.csv")])
    duck_s, duck_mb = run_measured([python, "-c", DUCKDB_SCRIPT, str(data), str(out / "duck.csv")])
    same = (out / "exporter-1.csv").read_bytes() == (out / "exporter.csv").read_bytes()
    csv_mb = (out / "exporter.csv").stat().st_size / 2**20
    print(
        f"events: {args.events:,}  gzip input: {raw_bytes / 2**20:.1f} MiB  "
        f"exporter CSV: {csv_mb:.1f} MiB  (same bytes with 1 and {cpus} jobs: {same})"
    )
    # wait4's peak RSS covers the process and the workers it waited for.
    print(f"{'':18} {'seconds':>8} {'events/s':>10} {'peak RSS MiB':>13}")
    for name, seconds, rss in (
        ("exporter, 1 job", one_s, one_mb),
        (f"exporter, {cpus} jobs", all_s, all_mb),
        ("duckdb, 1 thread", duck_s, duck_mb),
    ):
        print(f"{name:18} {seconds:8.2f} {args.events / seconds:10,.0f} {rss:13.0f}")
    print(
        f"time / duckdb: {one_s / duck_s:.2f} with 1 job, {all_s / duck_s:.2f} with {cpus} jobs "
        f"(target <= 1.0); peak RSS {max(one_mb, all_mb):.0f} MiB (target < 150)"
    )


if __name__ == "__main__":
    main()
