"""POST cost under the dev stage stays flat as the minute's raw file grows.

Starts a real ``chalice local --no-autoreload --stage dev`` (as ``make dev`` runs it)
on a free port with a temporary data folder, waits for the start of a minute, and
posts 40 batches of 500 events within it (one raw file of 20,000 events), timing
each POST from the client and reading the route's own time from the server's log
line. Then it times how long the minute's CSV part takes to hold every row after
the last POST. ``--rounds`` minutes in a row (the machine may be shared: compare
the rounds, not one sample).

    .venv/bin/python bench/bench_dev_post.py                 # this checkout
    .venv/bin/python bench/bench_dev_post.py --project DIR   # another checkout, same client

Before the background conversion, the local sink re-converted the whole file on
the request path: the 40th POST cost about 5x the 1st.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.dev_client import body_of, post
from scripts.dev import port_in_use

ROOT = Path(__file__).resolve().parent.parent
POSTS = 40
EVENTS = 500


def start_api(project: Path, data_dir: Path, port: int) -> tuple[subprocess.Popen[str], list[str]]:
    """``chalice local`` as make dev runs it, and the lines it logs (read in a thread)."""
    chalice = Path(sys.executable).parent / "chalice"
    command = [str(chalice), "local", "--no-autoreload", "--stage", "dev"]
    api = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=project,
        env={**os.environ, "ANALYTICS_DATA_DIR": str(data_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert api.stdout is not None
    stream = api.stdout
    threading.Thread(target=lambda: lines.extend(stream), daemon=True).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and api.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return api, lines
        except OSError:
            time.sleep(0.2)
    api.kill()
    raise SystemExit(f"chalice local did not start in {project}")


def route_ms(lines: list[str], index: int) -> float:
    """The route's own time (its log line's ``ms``) for the server's ``index``-th POST."""
    posts = [line for line in lines if '"event":"collect"' in line]
    if index >= len(posts):
        return float("nan")
    return float(json.loads(posts[index][posts[index].index("{") :])["ms"])


def part_rows(data_dir: Path) -> int:
    total = 0
    for path in (data_dir / "csv" / "parts").rglob("*.csv"):
        with path.open(newline="", encoding="utf-8") as handle:
            total += sum(1 for _ in csv.reader(handle)) - 1
    return total


def one_minute(base: str, interval: float, round_: int) -> list[float]:
    """40 POSTs within one clock minute (one raw file); each POST's time in ms."""
    bodies = [body_of(f"r{round_}-{n}", EVENTS) for n in range(POSTS)]
    while datetime.now(UTC).second > 1:
        time.sleep(0.2)
    times = []
    started = time.monotonic()
    for n, body in enumerate(bodies):
        status, seconds = post(base, body)
        assert status == 200, f"POST {n + 1} answered {status}"
        times.append(seconds * 1000)
        time.sleep(max(0.0, started + (n + 1) * interval - time.monotonic()))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="checkout to run")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--interval", type=float, default=1.3, help="seconds between POSTs")
    parser.add_argument("--rounds", type=int, default=3, help="minutes, one raw file each")
    args = parser.parse_args()
    if port_in_use("127.0.0.1", args.port):
        raise SystemExit(f"port {args.port} is in use: pass --port")
    print(f"{POSTS} POSTs of {EVENTS} events {args.interval} s apart in one minute, per round")
    print("round   POST 2   POST 40   ratio   route ms: POST 2   POST 40   part ready")
    ratios, route_ratios = [], []
    with tempfile.TemporaryDirectory(prefix="bench-dev-") as folder:
        data_dir = Path(folder)
        api, lines = start_api(args.project.resolve(), data_dir, args.port)
        try:
            for round_ in range(1, args.rounds + 1):
                times = one_minute(f"http://127.0.0.1:{args.port}", args.interval, round_)
                last_post, expected = time.monotonic(), round_ * POSTS * EVENTS
                while part_rows(data_dir) < expected and time.monotonic() - last_post < 60:
                    time.sleep(0.25)
                ready = time.monotonic() - last_post
                first = (round_ - 1) * POSTS
                second, fortieth = route_ms(lines, first + 1), route_ms(lines, first + POSTS - 1)
                ratios.append(times[-1] / times[1])
                route_ratios.append(fortieth / second)
                print(
                    f"{round_:>5} {times[1]:>7.1f}  {times[-1]:>7.1f}   {ratios[-1]:>5.2f}"
                    f"   {second:>15.1f}  {fortieth:>7.1f}   {ready:>6.1f} s"
                )
                print("      all POSTs (ms):", " ".join(f"{t:.0f}" for t in times))
        finally:
            api.send_signal(signal.SIGINT)
            api.wait(60)
    print(
        f"median ratio POST 40 / POST 2: {statistics.median(ratios):.2f} (client), "
        f"{statistics.median(route_ratios):.2f} (route)"
    )


if __name__ == "__main__":
    main()
