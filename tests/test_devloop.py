"""The dev stage's background work: the conversion queue, the daily schedule, the
conversion process, and a real `chalice local` that converts what is pending when stopped."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import Settings
from chalicelib.dev.loop import ConversionQueue, DailySchedule, DevLoop, next_daily_run
from chalicelib.dev.worker import ConversionWorker, Job
from tests.conftest import REPO_ROOT, _chalice_bin, free_port
from tests.factories import batch, body_bytes, event


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Any, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def raw_line(event_id: str, day: str = "2026-11-27") -> bytes:
    record = {**event(eventId=event_id), "serverTimestamp": f"{day}T10:00:00.000Z"}
    return json.dumps(record).encode() + b"\n"


def write_raw(root: Path, key: str, *ids: str) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        for event_id in ids:
            handle.write(raw_line(event_id))


def csv_ids(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [row["eventId"] for row in csv.DictReader(handle)]


# --- the queue ------------------------------------------------------------------------------


def test_writes_within_the_delay_make_one_conversion_and_later_ones_another() -> None:
    ran: list[Job] = []
    queue = ConversionQueue(ran.append, delay=0.2)
    for _ in range(20):  # a busy client: many writes to one minute's file
        queue.submit(("part", "raw/a.ndjson"))
    queue.submit(("part", "raw/b.ndjson"))
    wait_until(lambda: len(ran) == 2)
    assert sorted(ran) == [("part", "raw/a.ndjson"), ("part", "raw/b.ndjson")]
    queue.submit(("part", "raw/a.ndjson"))
    wait_until(lambda: len(ran) == 3)
    queue.close()
    assert ran[-1] == ("part", "raw/a.ndjson") and len(ran) == 3


def test_nothing_runs_before_the_delay_and_submit_never_waits_for_a_conversion() -> None:
    clock = FakeClock()
    release = threading.Event()
    ran: list[Job] = []

    def slow(job: Job) -> None:
        ran.append(job)
        release.wait(10)

    queue = ConversionQueue(slow, delay=1.5, clock=clock)
    queue.submit(("part", "k"))
    time.sleep(0.05)
    assert ran == [] and queue.pending() == [("part", "k")]
    clock.now += 1.5
    queue.submit(("part", "other"))  # wakes the thread, which now finds "k" due
    wait_until(lambda: ran == [("part", "k")])
    started = time.perf_counter()
    for _ in range(100):  # a conversion is running: submitting stays a dict update
        queue.submit(("part", "k"))
    assert time.perf_counter() - started < 0.5
    release.set()
    queue.close()
    assert sorted(ran) == [("part", "k"), ("part", "k"), ("part", "other")]


def test_a_slow_conversion_spaces_out_the_next_one_of_the_same_file() -> None:
    clock = FakeClock()
    ran: list[tuple[Job, float]] = []

    def slow(job: Job) -> None:
        ran.append((job, clock.now))
        clock.now += 2.0 if job[1] == "big" else 0.1  # the big file takes 2 s to convert

    queue = ConversionQueue(slow, delay=1.5, clock=clock)
    queue.submit(("part", "big"))
    queue.submit(("part", "small"))
    clock.now += 1.5
    queue.submit(("part", "wake"), delay=0)
    wait_until(lambda: len(ran) == 3)
    written = clock.now
    queue.submit(("part", "big"))  # due in 3 x 2 s, not 1.5 s
    queue.submit(("part", "small"))  # due in 1.5 s
    assert queue.pending() == [("part", "small"), ("part", "big")]
    clock.now = written + 1.5
    queue.submit(("part", "wake"), delay=0)
    wait_until(lambda: len(ran) == 5)
    assert {job[1] for job, _ in ran[3:]} == {"wake", "small"}  # big: not yet
    clock.now = written + 6.0
    queue.submit(("part", "wake"), delay=0)
    wait_until(lambda: len(ran) == 7)
    assert {job[1] for job, _ in ran[5:]} == {"wake", "big"}
    queue.close()


def test_close_runs_every_pending_job_once_and_survives_a_failing_one() -> None:
    ran: list[Job] = []

    def run(job: Job) -> None:
        ran.append(job)
        if job[1] == "bad":
            raise RuntimeError("boom")

    queue = ConversionQueue(run, delay=3600)
    for key in ("bad", "x", "y", "x"):
        queue.submit(("part", key))
    queue.close()
    assert ran == [("part", "bad"), ("part", "x"), ("part", "y")]
    queue.close()
    assert len(ran) == 3


# --- the daily schedule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-11-28T00:29:59+00:00", "2026-11-28T00:30:00+00:00"),
        ("2026-11-28T00:30:00+00:00", "2026-11-29T00:30:00+00:00"),
        ("2026-11-28T23:00:00-05:00", "2026-11-30T00:30:00+00:00"),  # 04:00 UTC on the 29th
    ],
)
def test_next_run_is_the_next_0030_utc(after: str, expected: str) -> None:
    assert next_daily_run(datetime.fromisoformat(after)) == datetime.fromisoformat(expected)


def test_the_schedule_builds_yesterday_at_0030_utc_and_again_the_next_day() -> None:
    now = [datetime(2026, 11, 27, 23, 59, tzinfo=UTC)]
    built: list[str] = []
    slept: list[float] = []

    def sleep(seconds: float) -> bool:
        slept.append(seconds)
        now[0] += timedelta(seconds=seconds)
        return len(built) == 2  # stop after the second build

    DailySchedule(lambda day: built.append(day.isoformat()), now=lambda: now[0], sleep=sleep).run()
    assert built == ["2026-11-27", "2026-11-28"]
    assert max(slept) == 60  # wakes each minute: a suspended laptop's clock jumps


def test_dev_loop_builds_the_daily_file_at_0030_in_its_conversion_process(tmp_path: Path) -> None:
    write_raw(tmp_path, "raw/2026/11/27/10/events-a.ndjson", "d1", "d2")
    write_raw(tmp_path, "raw/2026/11/27/23/events-b.ndjson", "d3", "d1")
    clock = [datetime(2026, 11, 28, 0, 29, 30, tzinfo=UTC)]

    def sleep(seconds: float) -> bool:
        clock[0] += timedelta(seconds=seconds)
        return clock[0] > datetime(2026, 11, 28, 0, 31, tzinfo=UTC)

    logged: list[dict[str, Any]] = []
    loop = DevLoop(
        Settings(data_dir=str(tmp_path)), logged.append, now=lambda: clock[0], sleep=sleep
    )
    loop.schedule.run()  # fires at 00:30:00 (the thread's loop, run here)
    loop.stop()  # the daily job was queued; stopping runs it and ends the process
    combined = tmp_path / "csv" / "2026-11-27_combined.csv"
    assert csv_ids(combined) == ["d1", "d2", "d3"]
    assert logged[0]["event"] == "daily" and logged[0]["duplicates"] == 1


# --- the conversion process -----------------------------------------------------------------


def test_the_worker_converts_in_another_process_and_reports_errors(tmp_path: Path) -> None:
    write_raw(tmp_path, "raw/2026/11/27/10/x.ndjson", "w1")
    logged: list[dict[str, Any]] = []
    worker = ConversionWorker(tmp_path, logged.append)
    try:
        worker.run(("part", "raw/2026/11/27/10/x.ndjson"))
        worker.run(("part", "raw/2026/11/27/10/missing.ndjson"))
        worker.run(("part", "csv/not-raw.csv"))
        assert worker._process is not None and worker._process.pid != os.getpid()
    finally:
        worker.close()
    assert csv_ids(tmp_path / "csv/parts/2026/11/27/10/x.ndjson.csv") == ["w1"]
    assert logged[0]["rows"] == 1 and "error" not in logged[0]
    assert "cannot read" in logged[1]["error"] and "missing.ndjson" in logged[1]["error"]
    assert "not a raw object" in logged[2]["error"]


def test_a_dead_worker_is_started_again_for_the_next_job(tmp_path: Path) -> None:
    write_raw(tmp_path, "raw/2026/11/27/10/x.ndjson", "w1")
    logged: list[dict[str, Any]] = []
    worker = ConversionWorker(tmp_path, logged.append)
    try:
        worker.run(("part", "raw/2026/11/27/10/x.ndjson"))
        assert worker._process is not None
        first = worker._process.pid
        worker._process.kill()
        worker._process.wait()
        worker.run(("part", "raw/2026/11/27/10/x.ndjson"))
        assert worker._process is not None and worker._process.pid != first
    finally:
        worker.close()
    assert [line["rows"] for line in logged] == [1, 1]


def test_a_worker_dying_during_a_job_is_logged_not_raised(tmp_path: Path) -> None:
    logged: list[dict[str, Any]] = []
    dies = [sys.executable, "-c", "import sys; sys.stdin.readline()"]
    worker = ConversionWorker(tmp_path, logged.append, command=dies)
    worker.run(("part", "raw/x.ndjson"))
    worker.close()
    assert logged == [
        {
            "event": "convert",
            "part": "raw/x.ndjson",
            "error": "worker failed: the conversion process exited with code 0",
        }
    ]


# --- a real chalice local ----------------------------------------------------------------


@pytest.fixture
def local_api(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "ALLOWED_"))}
    env["ANALYTICS_DATA_DIR"] = str(tmp_path)
    api = subprocess.Popen(
        [_chalice_bin(), "local", "--no-autoreload", "--stage", "dev", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(up, 30)
        yield api, base, tmp_path
    finally:
        api.kill()
        api.wait()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_chalice_local_converts_what_is_pending(
    local_api: tuple[subprocess.Popen[bytes], str, Path], signum: int
) -> None:
    api, base, data_dir = local_api
    request = urllib.request.Request(
        f"{base}/events",
        data=body_bytes(batch(event(eventId="pending-1"), event(eventId="pending-2"))),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    api.send_signal(signum)  # well within the 1.5 s delay: the part is not made yet
    api.send_signal(signum)  # a second one (Ctrl-C reaching make dev and the API) is ignored
    api.wait(30)
    [part] = (data_dir / "csv" / "parts").rglob("*.csv")
    assert csv_ids(part) == ["pending-1", "pending-2"]
