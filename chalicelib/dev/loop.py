"""The dev stage under `chalice local`: background conversion, the daily build, a clean stop.

Under ``chalice local`` there is no S3 trigger and no schedule. ``DevLoop`` stands
in for both:

- the local sink reports each write (``written(key)``, a dictionary update: a POST
  never waits for a conversion); ``ConversionQueue`` converts each raw file at most
  once per ``delay`` seconds after a write, one job at a time, in the conversion
  process (``dev.worker``), so the minute's CSV part trails its last write by about
  ``delay`` plus one conversion;
- ``DailySchedule`` builds yesterday's ``csv/YYYY-MM-DD_combined.csv`` at 00:30 UTC,
  like the prod schedule;
- on exit (Ctrl-C, SIGTERM, a normal end) every file still pending is converted
  once more before the process ends;
- ``chalice local`` queues a burst of connections instead of refusing some.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from types import FrameType
from typing import Any

from chalicelib.config import Settings
from chalicelib.dev.worker import ConversionWorker, Job
from chalicelib.jobs import day_before

# A file written again within this many seconds joins the pending conversion.
CONVERT_DELAY_SECONDS = 1.5
# ...and at least this many times its last conversion's duration: a big file's
# conversions take at most a quarter of a core, however busy the client.
CONVERT_SPACING = 3.0
# The prod schedule: cron(30 0 * * ? *).
DAILY_AT = (0, 30)
# Connections chalice local's server may hold before it accepts them. socketserver's
# default is 5: a burst of 30 POSTs saw a third wait 1 s for a SYN resend, some fail.
LISTEN_BACKLOG = 128


class ConversionQueue:
    """Jobs run once each after a delay, one at a time, by a single worker thread.

    ``submit`` of a job already pending does nothing, so a file written every 0.2 s
    is converted about once per ``delay`` (not never, as a debounce that restarts
    its timer on each write would do while a client is busy). A job whose last run
    was slow waits ``CONVERT_SPACING`` times that long instead, if that is longer.
    """

    def __init__(
        self,
        run: Callable[[Job], None],
        *,
        delay: float = CONVERT_DELAY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self._run = run
        self._delay = delay
        self._clock = clock
        self._log = logger or logging.getLogger(__name__)
        self._due: dict[Job, float] = {}
        self._took: dict[Job, float] = {}  # the last run's seconds, of slow jobs only
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, job: Job, delay: float | None = None) -> None:
        with self._changed:
            if job not in self._due:
                if delay is None:
                    delay = max(self._delay, CONVERT_SPACING * self._took.get(job, 0.0))
                self._due[job] = self._clock() + delay
                self._changed.notify()
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._work, name="dev-conversions", daemon=True
                )
                self._thread.start()

    def pending(self) -> list[Job]:
        with self._changed:
            return sorted(self._due, key=self._due.__getitem__)

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread (after the job it runs), then run every pending job now."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        # Requests still in flight may add files while this runs: a few rounds.
        for _ in range(3):
            with self._changed:
                jobs = sorted(self._due, key=self._due.__getitem__)
                self._due.clear()
            if not jobs:
                return
            for job in jobs:
                self._run_logged(job)

    def _work(self) -> None:
        while True:
            with self._changed:
                job = self._next_due()
                if job is None:
                    return
            self._run_logged(job)

    def _next_due(self) -> Job | None:
        """Wait (holding the condition) for the earliest job to fall due; None once closed."""
        while not self._closed:
            if not self._due:
                self._changed.wait()
                continue
            job = min(self._due, key=self._due.__getitem__)
            wait = self._due[job] - self._clock()
            if wait <= 0:
                del self._due[job]
                return job
            self._changed.wait(wait)
        return None

    def _run_logged(self, job: Job) -> None:
        started = self._clock()
        try:
            self._run(job)
        except Exception:
            self._log.exception("dev conversion of %s failed", job)
        took = self._clock() - started
        with self._changed:
            if len(self._took) > 1000:  # one per minute's file: forget old ones
                self._took.clear()
            if CONVERT_SPACING * took > self._delay:
                self._took[job] = took
            else:
                self._took.pop(job, None)


def next_daily_run(after: datetime) -> datetime:
    """The first 00:30 UTC strictly after ``after``."""
    after = after.astimezone(UTC)
    hour, minute = DAILY_AT
    today = after.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return today if today > after else today + timedelta(days=1)


class DailySchedule:
    """Calls ``action(yesterday)`` at 00:30 UTC every day (late, after a suspended laptop
    wakes up, rather than never). ``now`` and ``sleep`` are injectable for tests;
    ``sleep(seconds)`` returns True when the schedule should stop."""

    def __init__(
        self,
        action: Callable[[date], None],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], bool] | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._action = action
        self._now = now
        self._stopped = threading.Event()
        self._sleep = sleep or self._stopped.wait
        self._log = logger or logging.getLogger(__name__)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="dev-daily", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def run(self) -> None:
        due = next_daily_run(self._now())
        while True:
            now = self._now()
            if now >= due:
                try:
                    self._action(day_before(due))
                except Exception:
                    self._log.exception("the dev stage's daily build failed")
                due = next_daily_run(now)
            # Wake at least once a minute: a suspended machine's clock jumps.
            if self._sleep(min(60.0, max(0.0, (due - now).total_seconds()))):
                return


class DevLoop:
    """What ``app.py`` makes in a stage with the local sink: the sink's ``on_written``,
    the conversion queue and process, the daily schedule, and the stop hooks."""

    def __init__(
        self,
        settings: Settings,
        log: Callable[[dict[str, Any]], None],
        *,
        run: Callable[[Job], None] | None = None,
        delay: float = CONVERT_DELAY_SECONDS,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], bool] | None = None,
    ) -> None:
        """``run`` replaces the conversion process; ``now`` and ``sleep`` are the daily
        schedule's clock (see ``DailySchedule``)."""
        self._worker = ConversionWorker(settings.data_dir, log) if run is None else None
        self.queue = ConversionQueue(run or self._worker_run, delay=delay)
        self.schedule = DailySchedule(self._daily, now=now, sleep=sleep)
        self._stopped = False

    @classmethod
    def for_app(cls, settings: Settings, logger: logging.Logger) -> DevLoop:
        """Made at import; the schedule and signal hooks only under the ``chalice`` CLI
        (``chalice local``), not when tests import the app."""

        def log(fields: dict[str, Any]) -> None:
            level = logging.ERROR if "error" in fields else logging.INFO
            logger.log(level, json.dumps(fields, separators=(",", ":")))

        loop = cls(settings, log)
        atexit.register(loop.stop)
        if os.environ.get("AWS_CHALICE_CLI_MODE") == "true":
            loop.schedule.start()
            install_stop_signals()
            widen_listen_backlog()
        return loop

    def written(self, key: str) -> None:
        self.queue.submit(("part", key))

    def stop(self) -> None:
        """Convert what is pending, then end the conversion process. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.schedule.stop()
        self.queue.close()
        if self._worker is not None:
            self._worker.close()

    def _daily(self, day: date) -> None:
        self.queue.submit(("daily", day.isoformat()), delay=0)

    def _worker_run(self, job: Job) -> None:
        assert self._worker is not None
        self._worker.run(job)


def install_stop_signals() -> None:
    """First SIGINT or SIGTERM: stop serving (KeyboardInterrupt in the main thread, as
    Ctrl-C does; the exit hooks then convert what is pending). Later ones are ignored,
    so a second Ctrl-C (or the ``make dev`` runner passing one on) cannot cut that short.
    Only the main thread may set handlers: elsewhere (chalice's reloader) nothing is done.
    """
    if threading.current_thread() is not threading.main_thread():
        return

    def first_stop(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, first_stop)
    signal.signal(signal.SIGTERM, first_stop)


def widen_listen_backlog() -> None:
    """``chalice local`` makes its server from this class after importing the app."""
    from chalice.local import ThreadedHTTPServer

    ThreadedHTTPServer.request_queue_size = max(
        ThreadedHTTPServer.request_queue_size, LISTEN_BACKLOG
    )
