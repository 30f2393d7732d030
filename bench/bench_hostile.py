"""Hostile but valid input through the conversion: time, peak RSS and output sizes.

Three cases from the hostile-input review, each converted in a fresh child process
(os.wait4 gives the child's own peak RSS):

- column explosion: POSTS batches of 500 events, each event with 100 new attribute
  keys (valid, inside every limit), stored as the route stores them, converted per
  object and as the daily file;
- a gzip bomb: 1 MB of gzip that expands to 1 GB of NUL bytes;
- 1 GB of blank lines in a plain raw file.

    .venv/bin/python bench/bench_hostile.py [--posts 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import convert_in_child  # noqa: E402
from chalicelib.config import Limits  # noqa: E402
from chalicelib.ingest.validate import BatchValidator  # noqa: E402
from chalicelib.sinks import LocalDirectorySink  # noqa: E402

DAY = "2026-11-27"


def size_mb(path: str) -> float:
    return os.path.getsize(path) / 2**20 if path and os.path.exists(path) else 0.0


def column_explosion(root: Path, posts: int) -> None:
    from datetime import UTC, datetime

    moment = datetime.fromisoformat(f"{DAY}T10:00:00+00:00").astimezone(UTC)
    sink = LocalDirectorySink(root, now=lambda: moment)
    validator = BatchValidator(Limits())
    now_ms = int(moment.timestamp() * 1000)
    for post in range(posts):
        events = [
            {
                "eventId": f"p{post}-e{n}",
                "timestamp": now_ms,
                "sessionId": "s",
                "metricName": "Explosion",
                "metricAttributes": {f"k{post}_{n}_{i}": i for i in range(100)},
            }
            for n in range(500)
        ]
        body = orjson.dumps({"events": events})
        result = validator.process(orjson.loads(body), now_ms)
        assert not result.rejected
        sink.write(result.records)
    [raw] = list((root / "raw").rglob("*.ndjson"))
    key = raw.relative_to(root).as_posix()
    print(
        f"column explosion: {posts} POSTs of 500 events x 100 new keys, "
        f"raw {size_mb(str(raw)):.1f} MB"
    )
    for mode, target in (("part", key), ("daily", DAY)):
        run = convert_in_child(root, mode, target)
        print(
            f"  {mode:5}  {run.seconds:6.2f} s  peak RSS {run.peak_rss_mb:6.0f} MB  rows {run.rows}"
            f"  columns {run.columns}  CSV {size_mb(str(run.output)):.1f} MB"
        )


def gzip_bomb(root: Path) -> None:
    folder = root / "raw" / "2026" / "11" / "27" / "11"
    folder.mkdir(parents=True, exist_ok=True)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\x00" * (16 * 2**20)
    data = b"".join(compressor.compress(block) for _ in range(64)) + compressor.flush()
    path = folder / "bomb.gz"
    path.write_bytes(data)
    run = convert_in_child(root, "part", path.relative_to(root).as_posix())
    print(
        f"gzip bomb: {len(data) / 2**20:.1f} MB of gzip expanding to 1 GB of NULs: "
        f"{run.seconds:.2f} s, peak RSS {run.peak_rss_mb:.0f} MB, bad lines {run.bad_lines}, "
        f"errors file {size_mb(run.errors_output):.1f} MB"
    )


def blank_lines(root: Path) -> None:
    folder = root / "raw" / "2026" / "11" / "27" / "12"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "blank.ndjson"
    with path.open("wb") as handle:
        handle.write(orjson.dumps({"eventId": "first"}) + b"\n")
        for _ in range(64):
            handle.write(b"\n" * (16 * 2**20))
        handle.write(orjson.dumps({"eventId": "last"}) + b"\n")
    run = convert_in_child(root, "part", path.relative_to(root).as_posix())
    print(
        f"1 GB of blank lines: {run.seconds:.2f} s, "
        f"peak RSS {run.peak_rss_mb:.0f} MB, rows {run.rows}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=4)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    try:
        column_explosion(root / "explosion", args.posts)
        gzip_bomb(root / "bomb")
        blank_lines(root / "blank")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
