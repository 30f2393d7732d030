"""Sets of 16-byte replay keys kept on disk, so a replay's memory stays flat in the rejects.

A replay must know which rejects it met already (a reject stored twice) and which a
ledger names (sent by an earlier run): one key per reject, 10 million of them in a
day's worth is about 1.2 GB as Python objects. SQLite (standard library) holds them in
a temporary file instead, with a page cache of ``CACHE_KIB``; the keys of a request are
looked up and added together, a few µs per key against a replay's ~50 µs per reject.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

# SQLite's page cache for the file (its default is 2 MiB); the OS caches the rest.
CACHE_KIB = 8 * 1024
# Keys looked up in one query (SQLite allows 32,766 parameters).
QUERY_KEYS = 500


class KeySets:
    """Named sets of keys (``seen``, ``done``) in one temporary SQLite file."""

    def __init__(self, names: Iterable[str], directory: str | None = None) -> None:
        self._folder = tempfile.mkdtemp(prefix="replay-keys-", dir=directory)
        # Autocommit off by hand: one transaction spans many inserts.
        self._db = sqlite3.connect(Path(self._folder) / "keys.sqlite", isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._names = tuple(names)
        self._empty = set(self._names)  # a set with no key needs no query
        for name in self._names:
            self._db.execute(f"CREATE TABLE {name} (key BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")

    def update(self, name: str, keys: Iterable[bytes]) -> None:
        cursor = self._db.executemany(
            f"INSERT OR IGNORE INTO {name} VALUES (?)", ((k,) for k in keys)
        )
        if cursor.rowcount > 0:
            self._empty.discard(name)

    def present(self, name: str, keys: Sequence[bytes]) -> set[bytes]:
        """Which of ``keys`` are in the set: one query per ``QUERY_KEYS`` keys."""
        found: set[bytes] = set()
        if name in self._empty:
            return found
        for start in range(0, len(keys), QUERY_KEYS):
            chunk = keys[start : start + QUERY_KEYS]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key FROM {name} WHERE key IN ({marks})"
            found.update(row[0] for row in self._db.execute(query, chunk))
        return found

    def clear(self) -> None:
        for name in self._names:
            self._db.execute(f"DELETE FROM {name}")
        self._empty = set(self._names)

    def close(self) -> None:
        self._db.close()
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> KeySets:
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.close()
