"""A store in a local directory: the dev stage's data folder and the exporter's local
sources. Outputs appear whole (an unnamed file linked in at the end); writers that
append in place are held off with ``flock`` while a key is rewritten."""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from chalicelib.storage.base import StoreError, new_file_mode
from chalicelib.storage.unnamed import link_unnamed, unnamed_file


class LocalStore:
    """The layout under a local directory: the dev stage's data folder, a local export."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        # A prefix may end inside a name (raw/2026/11/2 matches 2x); walk its folder.
        folder = base if prefix.endswith("/") else base.parent
        if not folder.is_dir():
            return []
        keys = []
        for path in folder.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def open_read(self, key: str) -> BinaryIO:
        try:
            return (self.root / key).open("rb")
        except OSError as exc:
            raise StoreError(f"cannot read {self.describe(key)}: {exc.strerror}") from exc

    @contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Written to a file without a name (Linux's ``O_TMPFILE``), named only when
        whole: a process killed while writing, even by SIGKILL, leaves nothing behind.
        Elsewhere (or where the file system has no ``O_TMPFILE``) a ``.tmp-`` file."""
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = unnamed_file(path.parent)
        if fd is None:
            with self._named_temporary(path) as handle:
                yield handle
            return
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, new_file_mode())
            yield handle
            handle.flush()
            tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
            link_unnamed(fd, tmp)  # named for the instant before the rename
            try:
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

    @staticmethod
    @contextmanager
    def _named_temporary(path: Path) -> Iterator[BinaryIO]:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), new_file_mode())
                yield handle
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def describe(self, key: str) -> str:
        return str(self.root / key)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def purge_old_versions(self, key: str) -> int:
        return 0  # a file has no versions: a rename replaced the old content

    @contextmanager
    def rewriting(self, key: str) -> Iterator[None]:
        """The local sink's lock (``flock``) of the file: its appends wait, then go to
        the file renamed over it (the sink checks it still has the file at the path)."""
        try:
            fd = os.open(self.root / key, os.O_RDONLY)
        except FileNotFoundError:
            yield
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock
