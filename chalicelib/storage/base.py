"""What every store is: the ObjectStore and ErasableStore protocols, and how new files are
moded."""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol

_UMASK_LOCK = threading.Lock()


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file here: 0o666 less the umask (0644 usually).

    ``mkstemp`` makes 0600 files; outputs are published with this mode instead, like
    every other file the tools write. The umask is read from /proc where there is one:
    setting it to read it back would change it for every thread for a moment.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


class StoreError(Exception):
    """A store could not be read or written; the message says which and why."""


class ObjectStore(Protocol):
    """Keys in a folder or a bucket: listed, read, and written whole (see the module)."""

    def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""

    def open_read(self, key: str) -> BinaryIO: ...

    def open_write(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A handle whose content is published at ``key`` only when the block succeeds."""

    def describe(self, key: str) -> str:
        """Where ``key`` is, for people: a path or an s3:// URL."""


class ErasableStore(ObjectStore, Protocol):
    """What erasure needs besides reading and publishing: existence, deletion, and
    removal of every copy of a key that is not its current content (S3 versions)."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove ``key`` and every older version of it, the current one last (so an
        interrupted delete leaves the key listed); nothing happens if it is absent."""

    def purge_old_versions(self, key: str) -> int:
        """Delete every version of exactly ``key`` but the current object (all of them,
        delete markers included, when there is none); say how many were deleted."""

    def rewriting(self, key: str) -> AbstractContextManager[None]:
        """Hold off whoever appends to ``key`` in place while it is read and replaced."""
