"""The conversion jobs: raw objects become CSV per object, per day or for any range.

- ``convert_raw_object``: one raw object → ``csv/parts/YYYY/MM/DD/HH/<name>.csv``
  (the S3-event handler, and the local sink under ``chalice local``);
- ``build_daily_csv``: a day of raw objects → ``csv/YYYY-MM-DD_combined.csv``
  (the daily schedule);
- ``export_range``: any days → any output (``python -m exporter export``);
- ``convert_sources``: what all three run, also for ``json-to-csv``'s local files.

The daily file is built from the raw objects, not from the parts, so a part
that was never made (trigger not connected yet, a failed invocation) cannot
leave a hole in it. Zero-byte "folder" keys (``raw/2024/02/13/10/``, what S3
consoles make) are not raw objects: they make no part and are not read.
"""

from __future__ import annotations

import codecs
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import BinaryIO

from chalicelib.config import Settings
from chalicelib.csv.convert import ConversionReport, Source, convert
from chalicelib.csv.read import BadLine
from chalicelib.layout import (
    daily_errors_key,
    daily_key_for,
    is_folder_marker,
    part_errors_key,
    part_key_for,
    raw_day_prefix,
    raw_keys,
)
from chalicelib.storage.base import ObjectStore


def remove_stale_spools(directory: str | None = None, *, in_lambda: bool | None = None) -> int:
    """Remove conversion spools left in the temporary folder by conversions that died,
    and say how many.

    A spool is named ``csv-spool-<pid>-…`` after the process that made it. In Lambda a
    sandbox runs one invocation at a time, so every spool found there was left by an
    invocation that timed out (pids restart with the sandbox, so they say nothing).
    Anywhere else only spools whose process is gone are removed: a concurrent
    ``python -m exporter export`` keeps its own.
    """
    if in_lambda is None:
        in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    removed = 0
    for path in Path(directory or tempfile.gettempdir()).glob("csv-spool-*"):
        if in_lambda or not _owner_alive(path.name):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _owner_alive(name: str) -> bool:
    """Is the process named in ``csv-spool-<pid>-…`` running? Unknown names: yes."""
    pid_text = name.removeprefix("csv-spool-").partition("-")[0]
    if not pid_text.isdigit():
        return True
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def day_before(moment: str | datetime) -> date:
    """The day to build for a schedule that fired at ``moment`` (ISO 8601, UTC)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return (moment.astimezone(UTC) - timedelta(days=1)).date()


def sources_for(store: ObjectStore, keys: list[str]) -> Iterator[Source]:
    for key in keys:
        yield key, partial(store.open_read, key)


class BadLineSpool:
    """Bad lines go to a temporary file, then to ``errors/`` in one piece."""

    def __init__(self) -> None:
        self.count = 0
        self._file = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)

    def add(self, bad: BadLine) -> None:
        self.count += 1
        self._file.write(bad.to_json())

    def publish(self, store: ObjectStore, key: str) -> str:
        if not self.count:
            return ""
        self._file.seek(0)
        with store.open_write(key) as handle:
            shutil.copyfileobj(self._file, handle)
        return store.describe(key)

    def close(self) -> None:
        self._file.close()


def convert_sources(
    sources: Iterable[Source],
    *,
    output: Callable[[], AbstractContextManager[BinaryIO]],
    output_name: str,
    errors_store: ObjectStore,
    errors_key: str,
    neutralize_formulas: bool,
    max_columns: int,
    compress_spool: bool = False,
    on_source_done: Callable[[str], None] | None = None,
    jobs: int = 1,
    bom: bool = False,
) -> ConversionReport:
    """Convert ``sources`` into one CSV published by ``output``; bad lines go, in one
    piece, to ``errors_key`` in ``errors_store`` (nothing is written there if none).
    ``bom`` starts the file with a UTF-8 byte-order mark, for spreadsheets."""
    bad_lines = BadLineSpool()  # on disk past 1 MiB: a file of garbage is not held
    try:
        with output() as handle:
            if bom:
                handle.write(codecs.BOM_UTF8)
            report = convert(
                sources,
                handle,
                neutralize_formulas=neutralize_formulas,
                max_columns=max_columns,
                on_bad_line=bad_lines.add,
                on_source_done=on_source_done,
                compress_spool=compress_spool,
                jobs=jobs,
            )
        report.output = output_name
        report.errors_output = bad_lines.publish(errors_store, errors_key)
    finally:
        bad_lines.close()
    return report


def convert_raw_object(store: ObjectStore, key: str, settings: Settings) -> ConversionReport:
    """Idempotent: the same object always gives the same part, byte for byte.

    A folder marker gives an empty report (no ``output``) and writes nothing.
    """
    if is_folder_marker(key) and key.startswith(settings.raw_prefix):
        return ConversionReport()
    part_key = part_key_for(key, settings)
    return _convert_in_store(store, [key], part_key, part_errors_key(part_key, settings), settings)


def build_daily_csv(
    store: ObjectStore, day: date, settings: Settings, *, compress_spool: bool = True
) -> ConversionReport:
    """A day with no data gives a header-only file; a rerun gives the same bytes."""
    keys = raw_keys(store, raw_day_prefix(day, settings))
    return _convert_in_store(
        store,
        keys,
        daily_key_for(day, settings),
        daily_errors_key(day, settings),
        settings,
        compress_spool=compress_spool,
        bom=settings.csv_bom,
    )


def _convert_in_store(
    store: ObjectStore,
    keys: list[str],
    key: str,
    errors_key: str,
    settings: Settings,
    *,
    compress_spool: bool = False,
    bom: bool = False,
) -> ConversionReport:
    """The two Lambda jobs: objects of ``store`` → the CSV ``key`` in the same store."""
    return export_range(
        store,
        keys,
        settings,
        output=partial(store.open_write, key),
        output_name=store.describe(key),
        errors_store=store,
        errors_key=errors_key,
        compress_spool=compress_spool,
        bom=bom,
    )


def export_range(
    store: ObjectStore,
    keys: list[str],
    settings: Settings,
    *,
    output: Callable[[], AbstractContextManager[BinaryIO]],
    output_name: str,
    errors_store: ObjectStore,
    errors_key: str,
    on_source_done: Callable[[str], None] | None = None,
    compress_spool: bool = False,
    jobs: int = 1,
    bom: bool = False,
) -> ConversionReport:
    """``jobs`` > 1 reads objects in worker processes; the store must be picklable."""
    return convert_sources(
        sources_for(store, keys),
        output=output,
        output_name=output_name,
        errors_store=errors_store,
        errors_key=errors_key,
        neutralize_formulas=settings.neutralize_formulas,
        max_columns=settings.max_csv_columns,
        on_source_done=on_source_done,
        compress_spool=compress_spool,
        jobs=jobs,
        bom=bom,
    )
