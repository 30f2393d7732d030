"""The dev stage's conversion process: runs part and daily jobs for ``chalice local``.

Conversions run in this separate process, not in a thread of the server: a
conversion holds the GIL for most of its run, and a request in the same process
waits for it (POSTs measured 2-5x slower while a thread converted). The server
talks to it through ``ConversionWorker``, one JSON line per job each way:

    → ["part", "raw/2026/11/28/10/events-….ndjson"]   or   ["daily", "2026-11-27"]
    ← {"event": "convert" | "daily", "output": …, "rows": …, …}   or   {…, "error": "…"}

The process runs at the lowest priority, ignores SIGINT (Ctrl-C reaches the whole
process group; the server sends the last jobs after it) and ends when its stdin closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import IO, Any

from chalicelib.config import Settings
from chalicelib.jobs import build_daily_csv, convert_raw_object, remove_stale_spools
from chalicelib.storage.local import LocalStore

# A job: ("part", raw key) or ("daily", "YYYY-MM-DD").
type Job = tuple[str, str]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def run_job(store: LocalStore, settings: Settings, job: Job) -> dict[str, Any]:
    """Run one job here and now; the answer is the log line's fields, never an exception."""
    kind, argument = job
    event = "convert" if kind == "part" else "daily"
    try:
        if kind == "part":
            report = convert_raw_object(store, argument, settings)
        elif kind == "daily":
            report = build_daily_csv(store, date.fromisoformat(argument), settings)
        else:
            raise ValueError(f"unknown job kind {kind!r}")
    except Exception as exc:
        return {"event": event, kind: argument, "error": f"{type(exc).__name__}: {exc}"}
    return {"event": event, **report.as_log()}


class ConversionWorker:
    """The server's side: starts the process on first use (again if it died) and runs one
    job at a time through it. ``data_dir`` is resolved here, so the process's working
    directory does not matter."""

    def __init__(
        self,
        data_dir: Path | str,
        log: Callable[[dict[str, Any]], None],
        command: list[str] | None = None,
    ) -> None:
        self._env = {**os.environ, "ANALYTICS_DATA_DIR": str(Path(data_dir).resolve())}
        self._log = log
        self._command = command or [sys.executable, "-m", "chalicelib.dev.worker"]
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def run(self, job: Job) -> None:
        with self._lock:
            try:
                answer = self._ask(job)
            except (OSError, ValueError) as exc:
                self._stop_process()
                answer = {"event": "convert", job[0]: job[1], "error": f"worker failed: {exc}"}
        self._log(answer)

    def _ask(self, job: Job) -> dict[str, Any]:
        process = self._process
        if process is None or process.poll() is not None:
            process = self._process = subprocess.Popen(
                self._command,
                cwd=PROJECT_ROOT,
                env=self._env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        stdin, stdout = _pipes(process)
        stdin.write(json.dumps(list(job)).encode("utf-8") + b"\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise OSError(f"the conversion process exited with code {process.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self, timeout: float = 30.0) -> None:
        with self._lock:
            self._stop_process(timeout)

    def _stop_process(self, timeout: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):  # the process is gone already
                process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _pipes(process: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    assert process.stdin is not None and process.stdout is not None
    return process.stdin, process.stdout


# Background work yields the CPU to the server (and everything else): on a small
# machine a conversion and a request compete for the same cores.
NICENESS = 19


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    settings = Settings.from_env()
    store = LocalStore(settings.data_dir)
    remove_stale_spools()
    for line in sys.stdin.buffer:
        try:
            kind, argument = json.loads(line)
            answer = run_job(store, settings, (str(kind), str(argument)))
        except ValueError as exc:  # not a two-item JSON array
            answer = {"event": "convert", "error": f"bad job {line[:200]!r}: {exc}"}
        sys.stdout.write(json.dumps(answer, separators=(",", ":")) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
