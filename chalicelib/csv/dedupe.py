"""Finding duplicate events in constant memory: key fingerprints spilled to disk.

An event is a duplicate of an earlier one with the same (``sessionId``, ``eventId``),
compared with their JSON types (``1`` and ``"1"`` are different ids). Pass 1 of the
converter adds a 128-bit fingerprint of each row's key with the row's id number;
triples go into 256 partitions held in small blocks and appended to disk when full.
Each source's index is compacted as it goes: a key repeated inside a spilled block
keeps its first row, the others are written straight to the partition's list of rows
to drop, and at the source's end the repeats across its blocks join them. So a flood
of copies of one event costs 8 bytes of disk per copy, never memory. The file's index
gathers one row per key per source; after pass 1 each of its partitions is read on
its own, and the repeats across sources join the drop lists. Pass 2 reads the drop
lists of all partitions merged, in row order, as a stream. Two different keys would need the
same 128-bit hash to be taken for one (about 1 in 10^20 for a billion rows).
"""

from __future__ import annotations

import hashlib
import heapq
import os
import shutil
from array import array
from collections.abc import Iterator
from typing import Any

PARTITIONS = 256  # chosen by a fingerprint's first byte
SPILL_ENTRIES = 3 * 2048  # three numbers per row: fingerprint high, low, row id
_READ_ITEMS = 8192

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
    return hashlib.blake2b(data, digest_size=16).digest()


class Fingerprints:
    """(fingerprint high, low, row id) triples in partitions, on disk past a block.

    One index per source (``compact``) keeps, when a block is spilled, only the first
    row of each key in it and writes the others to the partition's drop list; at
    ``finish_source`` it drops the repeats across its blocks too, so what it hands on
    is one row per key, and drop lists in row order. The file's index (not compact)
    gathers the sources' in order, and ``drops`` finds the repeats across sources."""

    def __init__(self, directory: str, *, compact: bool = False) -> None:
        self._directory = directory
        self._compact = compact
        self._blocks = [array("q") for _ in range(PARTITIONS)]
        self._spilled = [False] * PARTITIONS
        self._dropped = [False] * PARTITIONS

    def add(self, key_fingerprint: bytes, row_id: int) -> None:
        """Its 16 bytes go in as two numbers (in C), then the row id."""
        partition = key_fingerprint[0]
        block = self._blocks[partition]
        block.frombytes(key_fingerprint)
        block.append(row_id)
        if len(block) >= SPILL_ENTRIES:
            self._spill(partition)

    def finish_source(self) -> tuple[list[bytes], list[str]]:
        """Per partition, the first row of each key (triples, as bytes: one per key, so a
        flood of copies is small) and the path (or "") of the drop list of the others,
        for the file's ``add_source``."""
        firsts, drop_paths = [], []
        for partition in range(PARTITIONS):
            triples = self._take(partition)
            later = _later_rows(triples)
            if later:
                self._merge_drops(partition, sorted(later))
                triples = _without(triples, later)
            firsts.append(triples.tobytes())
            drop_paths.append(self._path("drops", partition) if self._dropped[partition] else "")
        return firsts, drop_paths

    def add_source(self, firsts: list[bytes], drop_paths: list[str]) -> None:
        """Take a source's ``finish_source()`` (sources come in row order)."""
        for partition, data in enumerate(firsts):
            if data:
                block = self._blocks[partition]
                block.frombytes(data)
                if len(block) >= SPILL_ENTRIES:
                    self._spill(partition)
            if drop_paths[partition]:
                with (
                    open(drop_paths[partition], "rb") as source,
                    open(self._path("drops", partition), "ab") as target,
                ):
                    shutil.copyfileobj(source, target)
                os.unlink(drop_paths[partition])
                self._dropped[partition] = True

    def drops(self) -> Iterator[int]:
        """The row ids of every duplicate (each key's first row stays), in row order."""
        for partition in range(PARTITIONS):
            later = _later_rows(self._take(partition))
            if later:
                self._merge_drops(partition, sorted(later))
        return heapq.merge(*(self._read_drops(p) for p in range(PARTITIONS) if self._dropped[p]))

    def _path(self, kind: str, partition: int) -> str:
        return os.path.join(self._directory, f"{kind}-{partition}")

    def _spill(self, partition: int) -> None:
        block = self._blocks[partition]
        if self._compact:
            later = _later_rows(block)
            if later:  # in row order: this block's rows follow the last block's
                with open(self._path("drops", partition), "ab") as handle:
                    later.tofile(handle)
                self._dropped[partition] = True
                block = _without(block, later)
        with open(self._path("ids", partition), "ab") as handle:
            block.tofile(handle)
        self._blocks[partition] = array("q")
        self._spilled[partition] = True

    def _take(self, partition: int) -> array[int]:
        """Everything held for the partition, spilled triples first: they are older than
        the block (``add_source`` appends to the file what is older than any block)."""
        triples = array("q")
        if self._spilled[partition]:
            path = self._path("ids", partition)
            with open(path, "rb") as handle:
                triples.frombytes(handle.read())
            os.unlink(path)
            self._spilled[partition] = False
        triples.extend(self._blocks[partition])
        self._blocks[partition] = array("q")
        return triples

    def _merge_drops(self, partition: int, later: list[int]) -> None:
        """The partition's drop list with ``later`` merged in, in order, streamed."""
        merged_path = self._path("merged", partition)
        with open(merged_path, "wb") as handle:
            rows = array("q")
            for row in heapq.merge(self._read_drops(partition), later):
                rows.append(row)
                if len(rows) >= _READ_ITEMS:
                    rows.tofile(handle)
                    rows = array("q")
            rows.tofile(handle)
        os.replace(merged_path, self._path("drops", partition))
        self._dropped[partition] = True

    def _read_drops(self, partition: int) -> Iterator[int]:
        if not self._dropped[partition]:
            return
        with open(self._path("drops", partition), "rb") as handle:
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
    first: dict[tuple[int, int], int] = {}
    for key, row in zip(keys, triples[2::3], strict=True):
        earlier = first.setdefault(key, row)
        if earlier != row:
            later.append(max(earlier, row))
            if row < earlier:
                first[key] = row
    return later


def _without(triples: array[int], rows: array[int]) -> array[int]:
    """``triples`` less those of ``rows``."""
    gone = set(rows)
    kept = array("q")
    for index in range(0, len(triples), 3):
        if triples[index + 2] not in gone:
            kept.extend(triples[index : index + 3])
    return kept
