"""Run one conversion job in a fresh interpreter and measure its time and peak memory.

Shared by the hostile-input benchmark and the test that holds the same memory bound.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Peak RSS from VmHWM: it is per address space, so unlike ru_maxrss it does not count the
# (possibly large) process this one was forked from.
_CONVERT = """
import sys
from datetime import date
from chalicelib.config import Settings
from chalicelib.jobs import build_daily_csv, convert_raw_object
from chalicelib.storage.local import LocalStore
store = LocalStore(sys.argv[1])
if sys.argv[2] == "daily":
    report = build_daily_csv(store, date.fromisoformat(sys.argv[3]), Settings())
else:
    report = convert_raw_object(store, sys.argv[3], Settings())
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(report.output, report.rows, len(report.columns), report.bad_lines, peak)
print(report.errors_output)
"""


@dataclass(frozen=True)
class Measured:
    output: Path
    rows: int
    columns: int
    bad_lines: int
    errors_output: str
    seconds: float
    peak_rss_mb: float


def convert_in_child(data_dir: Path, mode: str, target: str) -> Measured:
    """``mode`` "part" converts the raw object ``target``; "daily" builds the day ``target``."""
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-c", _CONVERT, str(data_dir), mode, target],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    first, errors = [*finished.stdout.decode().splitlines(), ""][:2]
    output, rows, columns, bad_lines, peak_kib = first.split()
    return Measured(
        Path(output), int(rows), int(columns), int(bad_lines), errors, seconds, int(peak_kib) / 1024
    )
