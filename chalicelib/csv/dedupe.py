"""Finding duplicate events in constant memory: key fingerprints spilled to disk.

An event is a duplicate of an earlier one with the same (``sessionId``, ``eventId``).
Pass 1 of the converter adds a 63-bit fingerprint of each row's key with the row's
id number; pairs go into 256 partitions held in small blocks and appended to disk
when full. Afterwards only rows whose fingerprint another row shares are
candidates, and pass 2 compares their real keys: a fingerprint collision costs
time, never an event.
"""

from __future__ import annotations

import os
import zlib
from array import array
from typing import Any

PARTITIONS = 256
SPILL_ENTRIES = 4096


class Fingerprints:
    """(fingerprint, row id) pairs in partitions, spilled to disk so memory stays flat."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._blocks = [array("q") for _ in range(PARTITIONS)]
        self._spilled = [False] * PARTITIONS

    def add(self, fingerprint: int, row_id: int) -> None:
        partition = fingerprint & (PARTITIONS - 1)
        block = self._blocks[partition]
        block.append(fingerprint)
        block.append(row_id)
        if len(block) >= SPILL_ENTRIES:
            self._spill(partition)

    def add_partitions(self, partitions: list[bytes]) -> None:
        """Take another ``_Fingerprints``' ``export()``, in C, block by block."""
        for partition, data in enumerate(partitions):
            if data:
                block = self._blocks[partition]
                block.frombytes(data)
                if len(block) >= SPILL_ENTRIES:
                    self._spill(partition)

    def export(self) -> list[bytes]:
        """Everything held (all spilled parts too), as one bytes string per partition."""
        exported = []
        for partition in range(PARTITIONS):
            exported.append(self._take(partition).tobytes())
        return exported

    def _spill(self, partition: int) -> None:
        with open(os.path.join(self._directory, f"ids-{partition}"), "ab") as handle:
            self._blocks[partition].tofile(handle)
        self._blocks[partition] = array("q")
        self._spilled[partition] = True

    def _take(self, partition: int) -> array[int]:
        pairs = array("q")
        if self._spilled[partition]:
            path = os.path.join(self._directory, f"ids-{partition}")
            with open(path, "rb") as handle:
                pairs.frombytes(handle.read())
            os.unlink(path)
            self._spilled[partition] = False
        pairs.extend(self._blocks[partition])
        self._blocks[partition] = array("q")
        return pairs

    def rows_sharing_a_fingerprint(self) -> dict[int, int]:
        """Every row id whose fingerprint another row has too (the possible duplicates),
        with that fingerprint."""
        rows: dict[int, int] = {}
        for partition in range(PARTITIONS):
            pairs = self._take(partition)
            fingerprints = pairs[0::2]
            if len(set(fingerprints)) == len(fingerprints):
                continue  # the usual case, decided in C
            first_row: dict[int, int] = {}
            for index in range(0, len(pairs), 2):
                fingerprint, row = pairs[index], pairs[index + 1]
                earlier = first_row.setdefault(fingerprint, row)
                if earlier != row:
                    rows[earlier] = rows[row] = fingerprint
        return rows


def fingerprint(session_id: Any, event_id: Any) -> int:
    """63 bits of a dedupe key (session id, event id) and their JSON types, the same in
    every process (``hash()`` is salted per process). Rows sharing one are compared
    exactly in pass 2 (on the CSV cells), so a collision costs only time.

    The session id is part of the key so that an event id chosen by one client (ids
    come from browsers) never removes another session's event."""
    if type(session_id) is not str:
        session_id = f"\x00{type(session_id).__name__}:{session_id}"
    if type(event_id) is not str:
        event_id = f"\x00{type(event_id).__name__}:{event_id}"
    data = f"{session_id}\x1e{event_id}".encode("utf-8", "backslashreplace")
    return (zlib.crc32(data) << 31) ^ zlib.adler32(data)


# Row ids are (source index << 40) | row within the source: unique, and in output order.
ROW_BITS = 40
ROW_MASK = (1 << ROW_BITS) - 1
