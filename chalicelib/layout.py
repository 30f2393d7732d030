"""Where everything lives: every prefix and every key the pipeline reads or writes.

The stage's prefixes (``raw/``, ``csv/``, ``errors/``, ``rejected/``) come from its
Settings; below each, objects sit in day folders ``YYYY/MM/DD/`` (and hour folders ``HH/``
under the sinks' prefixes). A module that needs a key asks here, so the layout in
docs/SPEC.md has one implementation. Imports only config and storage.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from chalicelib.config import Settings
from chalicelib.storage.base import ObjectStore

# Firehose's extension for GZIP objects: the only one a part name drops.
_COMPRESSION_SUFFIX = ".gz"
# Where replays write the events they send on, and keep their per-day locks.
REPLAYED_PREFIX = "replayed/"
REPLAY_LOCKS_FOLDER = "locks/"
# Where erasure requests wait and their audit records stay.
ERASURE_PREFIX = "erasure/"


class NotARawObject(ValueError):
    """The key is outside the raw prefix; converting it could loop on our own output."""


def is_folder_marker(key: str) -> bool:
    """A key ending in ``/`` is a console's zero-byte "folder", not an object to convert."""
    return key.endswith("/")


def part_key_for(raw_key: str, settings: Settings) -> str:
    """``raw/<path>/<name>`` → ``csv/parts/<path>/<name>.csv``, less a final ``.gz``.

    Only the compression extension is dropped, so names that differ by any other
    extension get distinct parts: ``x.gz`` → ``x.csv`` (every Firehose object),
    ``x.ndjson`` → ``x.ndjson.csv`` (the local sink's files), ``x.json.gz`` →
    ``x.json.csv``. ``x`` and ``x.gz`` (the same object, compressed or not) share one.
    """
    if not raw_key.startswith(settings.raw_prefix) or is_folder_marker(raw_key):
        raise NotARawObject(f"{raw_key} is not a raw object under {settings.raw_prefix}")
    relative = raw_key[len(settings.raw_prefix) :].removesuffix(_COMPRESSION_SUFFIX)
    return f"{settings.csv_prefix}parts/{relative}.csv"


def part_errors_key(part_key: str, settings: Settings) -> str:
    """``csv/parts/<path>/<name>.csv`` → ``errors/parts/<path>/<name>.jsonl``: its bad lines."""
    relative = part_key[len(settings.csv_prefix) + len("parts/") :].removesuffix(".csv")
    return f"{settings.errors_prefix}parts/{relative}.jsonl"


def daily_key_for(day: date, settings: Settings) -> str:
    return f"{settings.csv_prefix}{day.isoformat()}_combined.csv"


def daily_errors_key(day: date, settings: Settings) -> str:
    return f"{settings.errors_prefix}daily/{day.isoformat()}.jsonl"


def day_prefix(prefix: str, day: date) -> str:
    """``raw/`` (or ``rejected/``, ``replayed/``) and a day → ``raw/YYYY/MM/DD/``: the
    layout every prefix the sinks write shares."""
    return f"{prefix}{day:%Y/%m/%d}/"


def raw_day_prefix(day: date, settings: Settings) -> str:
    return day_prefix(settings.raw_prefix, day)


def raw_keys(store: ObjectStore, prefix: str) -> list[str]:
    """The objects under ``prefix``, sorted; folder markers left out."""
    return [key for key in store.list_keys(prefix) if not is_folder_marker(key)]


def keys_for_days(store: ObjectStore, prefix: str, days: Iterable[date]) -> list[str]:
    """The objects of ``prefix``'s day folders, day by day; folder markers left out."""
    keys: list[str] = []
    for day in days:
        keys.extend(raw_keys(store, day_prefix(prefix, day)))
    return keys


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def local_sink_key(raw_prefix: str, moment: datetime) -> str:
    """The local sink's object for ``moment``: one per minute and process, in its hour folder."""
    return f"{raw_prefix}{moment:%Y/%m/%d/%H}/events-{moment:%Y-%m-%d-%H-%M}-{os.getpid()}.ndjson"


def replay_lock_key(replayed_prefix: str, day: date) -> str:
    """The lock one replay of ``day`` holds while it runs."""
    return f"{replayed_prefix}{REPLAY_LOCKS_FOLDER}{day.isoformat()}.lock"


def parquet_day_prefix(prefix: str, day: date) -> str:
    """The Athena table's ``dt`` partition folder of ``day`` under the Parquet prefix."""
    return f"{prefix}dt={day.isoformat()}/"


def erasure_pending_prefix(erasure_prefix: str) -> str:
    """Where erasure requests wait until their run has finished."""
    return f"{erasure_prefix}pending/"


def erasure_pending_key(erasure_prefix: str, run_id: str) -> str:
    """An erasure request that has not finished yet."""
    return f"{erasure_pending_prefix(erasure_prefix)}{run_id}.json"


def erasure_audit_key(erasure_prefix: str, run_id: str) -> str:
    """The audit record of a finished erasure, in the day folder of the day it started."""
    started = datetime.strptime(run_id[:8], "%Y%m%d")
    return f"{erasure_prefix}{started:%Y/%m/%d}/{run_id}.json"
