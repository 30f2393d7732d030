"""chalicelib/layout.py: every key and prefix the pipeline reads or writes, spelled in one place."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from chalicelib.config import Settings
from chalicelib.layout import (
    ERASURE_PREFIX,
    REPLAYED_PREFIX,
    NotARawObject,
    daily_errors_key,
    daily_key_for,
    day_prefix,
    days_between,
    erasure_audit_key,
    erasure_pending_key,
    is_folder_marker,
    keys_for_days,
    local_sink_key,
    parquet_day_prefix,
    part_errors_key,
    part_key_for,
    raw_day_prefix,
    replay_lock_key,
)
from chalicelib.storage.local import LocalStore


@pytest.mark.parametrize(
    ("name", "part"),
    [
        ("firehose-1-2026-11-27-10-00-00-abc.gz", "firehose-1-2026-11-27-10-00-00-abc.csv"),
        ("events-2026-11-27-10-00-42.ndjson", "events-2026-11-27-10-00-42.ndjson.csv"),
        ("x.json.gz", "x.json.csv"),
        ("x", "x.csv"),
    ],
)
def test_a_part_is_named_after_its_object_less_gz(name: str, part: str) -> None:
    assert (
        part_key_for(f"raw/2026/11/27/10/{name}", Settings()) == f"csv/parts/2026/11/27/10/{part}"
    )


SETTINGS = Settings().under("site/")
DAY = date(2026, 11, 27)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            part_errors_key("site/csv/parts/2026/11/27/10/x.csv", SETTINGS),
            "site/errors/parts/2026/11/27/10/x.jsonl",
        ),
        (daily_key_for(DAY, SETTINGS), "site/csv/2026-11-27_combined.csv"),
        (daily_errors_key(DAY, SETTINGS), "site/errors/daily/2026-11-27.jsonl"),
        (raw_day_prefix(DAY, SETTINGS), "site/raw/2026/11/27/"),
        (day_prefix("site/rejected/", DAY), "site/rejected/2026/11/27/"),
        (
            local_sink_key("raw/", datetime(2026, 11, 27, 10, 5, 59, tzinfo=UTC)),
            f"raw/2026/11/27/10/events-2026-11-27-10-05-{os.getpid()}.ndjson",
        ),
        (replay_lock_key(REPLAYED_PREFIX, DAY), "replayed/locks/2026-11-27.lock"),
        (parquet_day_prefix("parquet/", DAY), "parquet/dt=2026-11-27/"),
        (
            erasure_pending_key(ERASURE_PREFIX, "20261127T1000-ab"),
            "erasure/pending/20261127T1000-ab.json",
        ),
        (
            erasure_audit_key(ERASURE_PREFIX, "20261127T1000-ab"),
            "erasure/2026/11/27/20261127T1000-ab.json",
        ),
    ],
)
def test_every_key_has_the_documented_shape(key: str, expected: str) -> None:
    assert key == expected


def test_a_prefixed_part_stays_under_its_prefix() -> None:
    assert (
        part_key_for("site/raw/2026/11/27/10/a.gz", SETTINGS)
        == "site/csv/parts/2026/11/27/10/a.csv"
    )
    with pytest.raises(NotARawObject):
        part_key_for("raw/2026/11/27/10/a.gz", SETTINGS)  # outside the prefix
    with pytest.raises(NotARawObject):
        part_key_for("site/raw/2026/11/27/10/", SETTINGS)  # a console's folder marker


def test_keys_for_days_lists_each_day_in_order_without_folder_markers(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    for key in ("raw/2026/11/28/01/b.gz", "raw/2026/11/27/23/a.gz", "raw/2026/11/29/00/c.gz"):
        with store.open_write(key) as handle:
            handle.write(b"{}\n")
    days = days_between(DAY, date(2026, 11, 28))
    assert days == [DAY, date(2026, 11, 28)]
    assert keys_for_days(store, "raw/", days) == [
        "raw/2026/11/27/23/a.gz",
        "raw/2026/11/28/01/b.gz",
    ]
    assert not is_folder_marker("raw/a.gz") and is_folder_marker("raw/2026/")
