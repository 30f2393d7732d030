"""Erase one session from a million events spread over 30 days of objects, on a folder.

Generates (once, cached under bench/data/) 30 days of hourly gzip objects (720 of
them, as Firehose writes) holding N events, with their CSV parts and daily files as
the pipeline makes them; one session of 40 events crosses midnight between two days.
Then, on a hard-linked copy each time (erase publishes by rename, so the cache stays
as it was), runs ``python -m exporter erase`` in a child process and reports wall time
and peak RSS: wait4's (the largest single process, workers included) and the sum over
the process tree sampled every 20 ms.

    .venv/bin/python bench/bench_erase.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
FIRST = date(2026, 10, 1)
DAYS = 30
TARGET = "bench-session-to-erase"
TARGET_EVENTS = 40


def generate(directory: Path, events: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    hours = DAYS * 24
    per_object = events // hours
    target_hours = {DAYS // 2 * 24 - 1, DAYS // 2 * 24}  # 23:00 and 00:00 around midnight
    for hour in range(hours):
        moment = FIRST + timedelta(days=hour // 24)
        stamp = f"{moment.isoformat()}T{hour % 24:02d}:"
        # A session is one page load: a few dozen events within minutes.
        sessions = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(per_object // 20 + 1)]
        lines = []
        for n in range(per_object):
            session = rng.choice(sessions)
            if hour in target_hours and n % max(1, per_object // (TARGET_EVENTS // 2)) == 0:
                session = TARGET
            record = {
                "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
                "timestamp": 1_790_000_000_000 + hour * 3_600_000 + n,
                "sessionId": session,
                "metricName": rng.choice(["ContentPageLoad", "ContentElementInteraction"]),
                "value": None if n % 2 else round(rng.random() * 100, 3),
                "demoContentId": f"ButtonClicked-{n % 500}",
                "metricAttributes": {
                    "action": rng.choice(["click", "hover", "scroll"]),
                    "button": rng.choice(["submit", "cancel", "next"]),
                },
                "device": "my-device",
                "deviceCodename": "my-code",
                "language": rng.choice(["en_us", "de_de", "ja_jp"]),
                "appVersion": "1.0.0",
                "gitCommitSha": "abc123",
                "serverTimestamp": f"{stamp}{n * 60 // per_object:02d}:00.000Z",
                "derivedTimestamp": f"{stamp}{n * 60 // per_object:02d}:00.000Z",
            }
            lines.append(orjson.dumps(record))
        folder = directory / "raw" / f"{moment:%Y/%m/%d}" / f"{hour % 24:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = b"\n".join(lines) + b"\n"
        (folder / f"events-{hour}.gz").write_bytes(gzip.compress(data, compresslevel=6))


def derive(directory: Path) -> None:
    """The CSV parts and daily files, as the Lambdas would have made them."""
    sys.path.insert(0, str(ROOT))
    from chalicelib.config import Settings
    from chalicelib.jobs import build_daily_csv, convert_raw_object
    from chalicelib.storage.local import LocalStore

    store, settings = LocalStore(directory), Settings()
    for key in store.list_keys("raw/"):
        convert_raw_object(store, key, settings)
    for day in range(DAYS):
        build_daily_csv(store, FIRST + timedelta(days=day), settings)


def run_measured(command: list[str]) -> tuple[float, float, float, float, str]:
    """Wall seconds, CPU seconds (workers included), wait4's peak RSS (MiB), the
    sampled peak of the whole process tree (MiB), and the output."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, text=True)
        watched = psutil.Process(process.pid)
        tree_peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            try:
                members = [watched, *watched.children(recursive=True)]
                tree_peak = max(tree_peak, sum(p.memory_info().rss for p in members))
            except psutil.Error:
                pass
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read()
    if process.returncode:
        raise SystemExit(f"failed: {' '.join(command)}\n{output}")
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss / 1024, tree_peak / 2**20, output  # ru_maxrss: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = ROOT / "bench" / "data" / f"erase-{args.events}"
    if args.generate_only:
        generate(data, args.events)
        derive(data)
        (data / ".complete").touch()
        return
    if not (data / ".complete").exists():
        print(f"generating {args.events:,} events over {DAYS} days, with their CSVs ...")
        shutil.rmtree(data, ignore_errors=True)
        subprocess.run(
            [sys.executable, __file__, "--events", str(args.events), "--generate-only"],
            check=True,
        )
    raw = list((data / "raw").rglob("*.gz"))
    raw_mib = sum(p.stat().st_size for p in raw) / 2**20
    print(f"events: {args.events:,} in {len(raw)} gzip objects ({raw_mib:.0f} MiB), {DAYS} days")
    last = FIRST + timedelta(days=DAYS - 1)
    cpus = os.cpu_count() or 1
    print(f"load average before: {os.getloadavg()[0]:.1f} on {cpus} CPUs")
    print(f"{'':16} {'wall s':>7} {'CPU s':>6} {'wait4 RSS MiB':>14} {'tree RSS MiB':>13}")
    for name, extra in (
        ("dry run", ["--dry-run"]),
        ("erase, 1 job", ["--jobs", "1"]),
        (f"erase, {cpus} jobs", []),
    ):
        work = data.parent / f"erase-work-{args.events}"
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["cp", "-al", str(data), str(work)], check=True)
        command = [sys.executable, "-m", "exporter", "erase", "--session-id", TARGET]
        command += ["--from", FIRST.isoformat(), "--to", last.isoformat(), "--source", str(work)]
        seconds, cpu, peak, tree, output = run_measured([*command, *extra])
        print(f"{name:16} {seconds:7.2f} {cpu:6.2f} {peak:14.0f} {tree:13.0f}")
        print("    " + output.strip().replace("\n", "\n    "))
        if not extra:
            # Nothing is left of the session, and the cache was not touched.
            *_, again = run_measured([*command, "--dry-run"])
            print("    then: " + again.splitlines()[0])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
