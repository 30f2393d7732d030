"""`python -m exporter replay` as a run: two replays of the same day never both send (a
folder or a bucket), and its memory does not grow with the number of rejects."""

from __future__ import annotations

import fcntl
import gzip
import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chalicelib.ingest.validate import Rejection, iso_ms
from chalicelib.rejects import replay as replay_module
from chalicelib.rejects.record import encode, event_rejects
from exporter.cli import cli
from tests.conftest import REPO_ROOT, TEST_BUCKET, aws_client
from tests.factories import batch, event
from tests.test_rejects_wiring import create_stream

DAY = "2026-11-28"
RECEIVED_MS = int(datetime(2026, 11, 28, 10, tzinfo=UTC).timestamp() * 1000)
PER_REQUEST = 25


def reject_lines(count: int, start: int = 0) -> Iterator[bytes]:
    """``count`` rejects as the route keeps them: requests of 25 events refused for a
    depth limit since raised (valid under the default limits)."""
    for first in range(start, start + count, PER_REQUEST):
        events = [
            event(eventId=f"e-{n}", metricAttributes={"a": {"b": n}})
            for n in range(first, min(first + PER_REQUEST, start + count))
        ]
        records = event_rejects(
            received_at=iso_ms(RECEIVED_MS),
            request_id=f"req-{first}",
            body=batch(*events),
            rejections=[Rejection(i, "nested too deep") for i in range(len(events))],
            server_fields={"isBot": False, "country": "DE"},
        )
        yield from encode(records)


def write_rejects(root: Path, count: int, start: int = 0) -> None:
    path = root / "rejected" / "2026" / "11" / "28" / "10" / f"r-{start}.ndjson"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        handle.writelines(reject_lines(count, start))


def raw_line_count(root: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in root.glob("raw/**/*.ndjson"))


def replay_args(source: str, *extra: str) -> list[str]:
    return ["replay", "--date", DAY, "--source", source, "--project-dir", source, *extra]


# --- two replays at once ----------------------------------------------------------------


def test_two_replays_of_a_folder_at_once_send_each_reject_once(tmp_path: Path) -> None:
    rejects = 20_000
    write_rejects(tmp_path, rejects)
    command = [sys.executable, "-m", "exporter", *replay_args(str(tmp_path))]
    runs = [
        subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert raw_line_count(tmp_path) == rejects
    replayed = [
        out.decode() for out, _ in outputs if f"replayed {rejects} event(s)" in out.decode()
    ]
    assert len(replayed) == 1, outputs
    other = next(
        r for r, (out, _) in zip(runs, outputs, strict=True) if out.decode() not in replayed
    )
    err = outputs[runs.index(other)][1].decode()
    if other.returncode:  # it stopped on the lock: one line, naming the holder
        assert err.startswith(f"Error: another replay of {DAY} is running (pid ")
        assert err.count("\n") == 1
    else:  # it started after the first had finished: everything was in the ledger
        assert "already replayed: 20000" in outputs[runs.index(other)][0].decode()


def test_a_held_folder_lock_stops_a_replay_in_one_line(tmp_path: Path) -> None:
    write_rejects(tmp_path, 50)
    lock = tmp_path / "replayed" / "locks" / f"{DAY}.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held = CliRunner().invoke(cli, replay_args(str(tmp_path)))
        # A dry run sends nothing: it takes no lock.
        dry = CliRunner().invoke(cli, replay_args(str(tmp_path), "--dry-run"))
    assert held.exit_code == 1 and held.stderr.count("\n") == 1
    assert f"another replay of {DAY} is running" in held.stderr
    assert raw_line_count(tmp_path) == 0 and not (tmp_path / "replayed" / "2026").exists()
    assert dry.exit_code == 0 and "would replay 50 event(s)" in dry.stdout
    done = CliRunner().invoke(cli, replay_args(str(tmp_path)))  # released: it runs
    assert done.exit_code == 0 and raw_line_count(tmp_path) == 50


def test_a_bucket_lock_stops_a_second_replay_and_an_expired_one_is_taken_over(
    moto_endpoint: str, bucket: str, s3: Any, tmp_path: Path
) -> None:
    s3.put_object(
        Bucket=bucket,
        Key="rejected/2026/11/28/10/r.gz",
        Body=gzip.compress(b"".join(reject_lines(50))),
    )
    stream = create_stream(aws_client("firehose", moto_endpoint), "raw/")
    source = f"s3://{TEST_BUCKET}"
    args = [*replay_args(source), "--endpoint-url", moto_endpoint, "--stream-name", stream]
    args[args.index("--project-dir") + 1] = str(tmp_path)
    key = f"replayed/locks/{DAY}.lock"
    now = datetime.now(UTC)
    running = {
        "host": "h",
        "pid": 7,
        "since": now.isoformat(),
        "until": (now + timedelta(minutes=5)).isoformat(),
    }
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(running).encode())
    held = CliRunner().invoke(cli, args)
    assert held.exit_code == 1 and held.stderr.count("\n") == 1
    assert f"another replay of {DAY} is running (pid 7 on h" in held.stderr
    assert not _keys(s3, "raw/") and not _keys(s3, "replayed/2026/")
    # A lock past its time was left by a replay that died: taken over, and released after.
    died = {**running, "until": (now - timedelta(seconds=1)).isoformat()}
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(died).encode())
    done = CliRunner().invoke(cli, [*args, "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["replayed"] == 50
    assert _keys(s3, "replayed/locks/") == []
    # Only one of two replays can create the lock object.
    from chalicelib.storage.s3 import S3Store

    store = S3Store(s3, bucket)
    assert store.create_exclusive(key, b"{}") is not None
    assert store.create_exclusive(key, b"{}") is None


def _keys(s3: Any, prefix: str) -> list[str]:
    return [
        o["Key"] for o in s3.list_objects_v2(Bucket=TEST_BUCKET, Prefix=prefix).get("Contents", [])
    ]


# --- memory ---------------------------------------------------------------------------


def _replay_peak(root: Path, rejects: int, *extra: str) -> int:
    """Peak bytes Python allocated while one replay of ``rejects`` rejects read, checked
    and sent them (until the CSV part of what it wrote is made: the converter's memory
    is its own, bounded by its spill sizes). In objects of at most 2,000 rejects:
    reading an object costs up to a 1 MiB chunk, whatever its size."""
    for start in range(0, rejects, 2_000):
        write_rejects(root, min(2_000, rejects - start), start)
    from exporter import rejects as rejects_command  # after exporter.cli, which loads it

    peaks: list[int] = []
    convert = rejects_command._convert_written

    def measured(*args: Any) -> None:
        peaks.append(tracemalloc.get_traced_memory()[1])
        convert(*args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rejects_command, "_convert_written", measured)
        tracemalloc.start()
        try:
            result = CliRunner().invoke(cli, replay_args(str(root), *extra))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert result.exit_code == 0, result.output
    return peaks[0]


@pytest.mark.parametrize("mode", [["--dry-run"], []], ids=["dry run", "replay"])
def test_replay_memory_does_not_grow_with_the_rejects(
    tmp_path: Path, mode: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """8,000 more rejects (each ~120 bytes of keys when held in sets) cost under 256 KiB."""
    # What is bounded anyway, made small so that 2,000 rejects fill it: a sink write's
    # lines and the ledger's lines in memory before they go to disk.
    monkeypatch.setattr(replay_module, "FLUSH_LINES", 100)
    monkeypatch.setattr(replay_module, "LEDGER_MEMORY_BYTES", 16 * 1024)
    _replay_peak(tmp_path / "warm", 100, *mode)  # imports and caches, once
    small = _replay_peak(tmp_path / "small", 2_000, *mode)
    large = _replay_peak(tmp_path / "large", 10_000, *mode)
    assert large - small < 256 * 1024, (small, large)
    if not mode:  # a second replay: every key comes from the ledger
        again = _replay_peak(tmp_path / "large", 0, *mode)
        assert again - small < 256 * 1024, (small, again)
