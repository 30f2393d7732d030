"""Files written without a name and named only when whole (Linux's ``O_TMPFILE``).

A process killed while it writes, even by SIGKILL, leaves no temporary file behind: the
kernel frees an unnamed file when its last descriptor closes. Used by the local store to
publish outputs; elsewhere it falls back to a named temporary file.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Any

_AT_FDCWD, _AT_SYMLINK_FOLLOW = -100, 0x400


def unnamed_file(folder: Path) -> int | None:
    """An ``O_TMPFILE`` descriptor in ``folder``, or None where there is none to name."""
    if not hasattr(os, "O_TMPFILE") or not _LINKAT:
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o600)
    except OSError:  # a file system without O_TMPFILE
        return None


def _load_linkat() -> Any:
    """libc's ``linkat``: ``os.link`` may not pass AT_SYMLINK_FOLLOW, and an unnamed file
    is named only through its /proc/self/fd link, followed."""
    try:
        linkat = ctypes.CDLL(None, use_errno=True).linkat
    except (OSError, AttributeError):
        return None
    linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    return linkat


_LINKAT = _load_linkat() if sys.platform == "linux" else None


def link_unnamed(fd: int, target: Path) -> None:
    """Give the unnamed file ``fd`` the name ``target`` (which must not exist)."""
    assert _LINKAT is not None  # unnamed_file gave ``fd``
    source = f"/proc/self/fd/{fd}".encode()
    if _LINKAT(_AT_FDCWD, source, _AT_FDCWD, os.fsencode(target), _AT_SYMLINK_FOLLOW) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), str(target))
