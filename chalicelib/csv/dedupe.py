"""Finding duplicate events in constant memory: key fingerprints spilled to disk.

An event is a duplicate of an earlier one with the same (``sessionId``, ``eventId``),
compared with their JSON types (``1`` and ``"1"`` are different ids). Pass 1 of the
converter adds a 128-bit fingerprint of each row's key with the row's id number;
triples go into 256 partitions held in small blocks and appended to disk when full.
Each source's index is compacted as it goes: a key repeated inside a spilled block
keeps its first row, the others join the index's list of rows to drop, and at the
source's end the repeats across its blocks join them. That list holds at most
DROPS_HELD row ids in memory, then goes to disk in sorted runs: so a flood of copies of
one event costs 8 bytes of disk per copy, never more memory. A source hands on one
drop list file (few files: creating one is slow on some disks). The file's index
gathers one row per key per source; after pass 1 each of its partitions is read on
its own, and the repeats across sources join the drop lists. Pass 2 reads the drop
lists merged, in row order, as a stream. Two different keys would need the
same 128-bit hash to be taken for one (about 1 in 10^20 for a billion rows).
"""

from __future__ import annotations

import hashlib
import heapq
import operator
import os
from array import array
from collections.abc import Iterable, Iterator
from itertools import chain, compress
from typing import Any

PARTITIONS = 256  # chosen by a fingerprint's first byte
SPILL_ENTRIES = 3 * 2048  # three numbers per row: fingerprint high, low, row id
_READ_ITEMS = 8192
# Duplicate row ids an index holds in memory (8 bytes each) before it writes them out,
# and the most files of them it keeps before merging them into one.
DROPS_HELD = 1 << 16
MAX_RUNS = 64

# Row ids are (source index << 40) | row within the source: unique, and in output order.
ROW_BITS = 40
ROW_MASK = (1 << ROW_BITS) - 1


def fingerprint(session_id: Any, event_id: Any) -> bytes:
    """128 bits of a dedupe key (session id, event id) and their JSON types, the same in
    every process (``hash()`` is salted per process).

    The session id is part of the key so that an event id chosen by one client (ids
    come from browsers) never removes another session's event."""
    if type(session_id) is not str:
        session_id = f"\x00{type(session_id).__name__}:{session_id}"
    if type(event_id) is not str:
        event_id = f"\x00{type(event_id).__name__}:{event_id}"
    data = f"{session_id}\x1e{event_id}".encode("utf-8", "backslashreplace")
    # The first 16 bytes of the default 64: a digest_size argument costs more than that.
    return hashlib.blake2b(data).digest()[:16]


class Fingerprints:
    """(fingerprint high, low, row id) triples in partitions, on disk past a block.

    One index per source (``compact``) keeps, when a block is spilled, only the first
    row of each key in it and adds the others to its drop list; at ``finish_source`` it
    drops the repeats across its blocks too, so what it hands on is one row per key,
    and one drop list in row order. The file's index (not compact) gathers the
    sources' in order, and ``drops`` finds the repeats across sources."""

    def __init__(self, directory: str, *, compact: bool = False) -> None:
        self._directory = directory
        self._compact = compact
        # The triples held per partition (a hot loop may inline ``add``: it looks the block
        # up for each key, as a spill replaces it, and calls ``spill`` past SPILL_ENTRIES).
        self.blocks = [array("q") for _ in range(PARTITIONS)]
        self._spilled = [False] * PARTITIONS
        self._dropped = _DropList(directory)

    def add(self, key_fingerprint: bytes, row_id: int) -> None:
        """Its 16 bytes go in as two numbers (in C), then the row id."""
        partition = key_fingerprint[0]
        block = self.blocks[partition]
        block.frombytes(key_fingerprint)
        block.append(row_id)
        if len(block) >= SPILL_ENTRIES:
            self.spill(partition)

    def finish_source(self) -> tuple[list[bytes], list[str]]:
        """Per partition, the first row of each key (triples, as bytes: one per key, so a
        flood of copies is small); and the path of the source's drop list of the others
        (none when no row is dropped), for the file's ``add_source``."""
        firsts = []
        for partition in range(PARTITIONS):
            triples = self._take(partition)
            later = _later_rows(triples)
            if later:
                self._dropped.add(later)
                triples = _without(triples, later)
            firsts.append(triples.tobytes())
        path = self._dropped.write_one()
        return firsts, [path] if path else []

    def add_source(self, firsts: list[bytes], drop_paths: list[str]) -> None:
        """Take a source's ``finish_source()`` (sources come in row order)."""
        for partition, data in enumerate(firsts):
            if data:
                block = self.blocks[partition]
                block.frombytes(data)
                if len(block) >= SPILL_ENTRIES:
                    self.spill(partition)
        for path in drop_paths:
            self._dropped.add_run(path)

    def drops(self) -> Iterator[int]:
        """The row ids of every duplicate (each key's first row stays), in row order."""
        for partition in range(PARTITIONS):
            later = _later_rows(self._take(partition))
            if later:
                self._dropped.add(later)
        return self._dropped.in_order()

    def _path(self, partition: int) -> str:
        return os.path.join(self._directory, f"ids-{partition}")

    def spill(self, partition: int) -> None:
        block = self.blocks[partition]
        if self._compact:
            later = _later_rows(block)
            if later:
                self._dropped.add(later)
                block = _without(block, later)
        with open(self._path(partition), "ab") as handle:
            block.tofile(handle)
        self.blocks[partition] = array("q")
        self._spilled[partition] = True

    def _take(self, partition: int) -> array[int]:
        """Everything held for the partition, spilled triples first: they are older than
        the block (``add_source`` appends to the file what is older than any block)."""
        triples = array("q")
        if self._spilled[partition]:
            path = self._path(partition)
            with open(path, "rb") as handle:
                triples.frombytes(handle.read())
            os.unlink(path)
            self._spilled[partition] = False
        triples.extend(self.blocks[partition])
        self.blocks[partition] = array("q")
        return triples


class _DropList:
    """Row ids to drop, in any order as they come: up to DROPS_HELD in memory, sorted
    runs on disk past that (at most MAX_RUNS: more are merged into one). Files are few:
    creating one costs this machine's disk a third of a millisecond."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._held = array("q")
        self._runs: list[str] = []
        self._written = 0

    def add(self, rows: array[int]) -> None:
        self._held.extend(rows)
        if len(self._held) >= DROPS_HELD:
            self.add_run(self._write(sorted(self._held)))
            self._held = array("q")

    def add_run(self, path: str) -> None:
        """Take over a file of row ids in row order (a source's drop list)."""
        self._runs.append(path)
        if len(self._runs) > MAX_RUNS:
            runs, self._runs = self._runs, []
            self._runs.append(self._write(heapq.merge(*map(_read_rows, runs))))
            for run in runs:
                os.unlink(run)

    def in_order(self) -> Iterator[int]:
        return heapq.merge(sorted(self._held), *map(_read_rows, self._runs))

    def write_one(self) -> str:
        """Everything as one file in row order (its path), or "" when empty."""
        if not self._held and len(self._runs) == 1:
            return self._runs[0]
        if not self._held and not self._runs:
            return ""
        path = self._write(self.in_order())
        for run in self._runs:
            os.unlink(run)
        self._runs, self._held = [], array("q")
        return path

    def _write(self, rows: Iterable[int]) -> str:
        path = os.path.join(self._directory, f"dropped-{self._written}")
        self._written += 1
        with open(path, "wb") as handle:
            chunk = array("q")
            for row in rows:
                chunk.append(row)
                if len(chunk) >= _READ_ITEMS:
                    chunk.tofile(handle)
                    chunk = array("q")
            chunk.tofile(handle)
        return path


def _read_rows(path: str) -> Iterator[int]:
    with open(path, "rb") as handle:
        while True:
            rows = array("q")
            try:
                rows.fromfile(handle, _READ_ITEMS)
            except EOFError:  # the last, shorter read still filled ``rows``
                yield from rows
                return
            yield from rows


def _later_rows(triples: array[int]) -> array[int]:
    """The rows of ``triples`` whose fingerprint an earlier row of theirs has."""
    later = array("q")
    highs = triples[0::3]
    if len(set(highs)) == len(highs):
        return later  # the usual case, decided in C: no two share even half a fingerprint
    keys = list(zip(highs, triples[1::3], strict=True))
    rows = triples[2::3]
    if all(map(operator.lt, rows, rows[1:])):
        # Rows ascend (as indexes add them): each key's first row is the one a dict built
        # from the end keeps, and the later rows are the others; all in C.
        first = dict(zip(reversed(keys), reversed(rows), strict=True))
        return array("q", sorted(set(rows).difference(first.values())))
    first = {}
    for key, row in zip(keys, rows, strict=True):
        earlier = first.setdefault(key, row)
        if earlier != row:
            later.append(max(earlier, row))
            if row < earlier:
                first[key] = row
    return later


def _without(triples: array[int], rows: array[int]) -> array[int]:
    """``triples`` less those of ``rows``."""
    gone = set(rows)
    row_ids = triples[2::3]
    # In C: the triples (zipped back) whose row is not gone, flattened again.
    kept = compress(
        zip(triples[0::3], triples[1::3], row_ids, strict=True),
        map(operator.not_, map(gone.__contains__, row_ids)),
    )
    return array("q", chain.from_iterable(kept))
