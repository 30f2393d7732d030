"""Rebuilding what was made from rewritten raw objects: their CSV parts and daily files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

from chalicelib.config import Settings
from chalicelib.jobs import build_daily_csv, convert_raw_object
from chalicelib.layout import daily_errors_key, daily_key_for, part_errors_key, part_key_for
from chalicelib.storage.base import ErasableStore


@dataclass
class Rebuilt:
    """One CSV (a part or a daily file) built again after its raw objects were rewritten."""

    key: str  # the CSV part or daily file
    daily: bool
    written: bool = False  # False: it did not exist, so there was nothing to rebuild
    errors_deleted: str = ""  # an errors/ object whose bad lines are all gone now
    versions_deleted: int = 0


def _rebuild(
    store: ErasableStore, result: Rebuilt, errors_key: str, build: Callable[[], Any]
) -> Rebuilt:
    """Build ``result.key`` again if it exists (a CSV nobody made is not made now)."""
    key = result.key
    if store.exists(key):
        report = build()
        result.written = True
        # A rebuild publishes its bad lines only when there are some: an old errors
        # object would keep lines that were just erased.
        if not report.bad_lines and store.exists(errors_key):
            store.delete(errors_key)
            result.errors_deleted = errors_key
    result.versions_deleted = store.purge_old_versions(key) + store.purge_old_versions(errors_key)
    return result


def rebuild_part(store: ErasableStore, settings: Settings, raw_key: str) -> Rebuilt:
    part = part_key_for(raw_key, settings)
    _delete_legacy_part(store, settings, raw_key, part)
    build = partial(convert_raw_object, store, raw_key, settings)
    return _rebuild(store, Rebuilt(part, daily=False), part_errors_key(part, settings), build)


# Parts made before the part-name rule kept every extension but .gz were named after the
# raw object less any of these (x.ndjson → x.csv); such a part still holds the events.
_LEGACY_SUFFIXES = (".ndjson", ".jsonl", ".json")


def _delete_legacy_part(
    store: ErasableStore, settings: Settings, raw_key: str, current: str
) -> None:
    """A part (and its errors object) under the old name of ``raw_key``'s part goes."""
    relative = raw_key[len(settings.raw_prefix) :].removesuffix(".gz")
    for suffix in _LEGACY_SUFFIXES:
        if relative.endswith(suffix):
            old = relative.removesuffix(suffix)
            legacy = f"{settings.csv_prefix}parts/{old}.csv"
            if legacy != current:
                for key in (legacy, part_errors_key(legacy, settings)):
                    if store.exists(key):
                        store.delete(key)
                        store.purge_old_versions(key)
            return


def rebuild_daily(store: ErasableStore, settings: Settings, day: date) -> Rebuilt:
    build = partial(build_daily_csv, store, day, settings)
    daily = Rebuilt(daily_key_for(day, settings), daily=True)
    return _rebuild(store, daily, daily_errors_key(day, settings), build)


def day_of(key: str, prefix: str) -> date | None:
    """The UTC day of ``<prefix>YYYY/MM/DD/…``, or None for another layout."""
    try:
        return datetime.strptime(key[len(prefix) : len(prefix) + 10], "%Y/%m/%d").date()
    except ValueError:
        return None
