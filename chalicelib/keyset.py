"""Sets of 16-byte replay keys kept on disk, so a replay's memory stays flat in the rejects.

A replay must know which rejects it met already (a reject stored twice) and which a
ledger names (sent by an earlier run): one key per reject, 10 million of them in a
day's worth is about 1.2 GB as Python objects. SQLite (standard library) holds them in
a temporary file instead, with a page cache of ``CACHE_KIB``: the lookups are B-tree
searches, about 3 µs each, against a replay's ~100 µs per reject.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

# SQLite's page cache for the file (its default is 2 MiB); the OS caches the rest.
CACHE_KIB = 8 * 1024


class KeySets:
    """Named sets of keys (``seen``, ``done``) in one temporary SQLite file."""

    def __init__(self, names: Iterable[str], directory: str | None = None) -> None:
        self._folder = tempfile.mkdtemp(prefix="replay-keys-", dir=directory)
        # Autocommit off by hand: one transaction spans many inserts.
        self._db = sqlite3.connect(Path(self._folder) / "keys.sqlite", isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._names = tuple(names)
        for name in self._names:
            self._db.execute(f"CREATE TABLE {name} (key BLOB PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")

    def add(self, name: str, key: bytes) -> bool:
        """Add ``key`` to the set; False when it was there already."""
        cursor = self._db.execute(f"INSERT OR IGNORE INTO {name} VALUES (?)", (key,))
        return cursor.rowcount == 1

    def update(self, name: str, keys: Iterable[bytes]) -> None:
        self._db.executemany(f"INSERT OR IGNORE INTO {name} VALUES (?)", ((k,) for k in keys))

    def __contains__(self, item: tuple[str, bytes]) -> bool:
        name, key = item
        found = self._db.execute(f"SELECT 1 FROM {name} WHERE key = ?", (key,)).fetchone()
        return found is not None

    def clear(self) -> None:
        for name in self._names:
            self._db.execute(f"DELETE FROM {name}")

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
