"""Worker process pools whose workers end with their parent, however the parent ends.

A pool's workers wait on a pipe from the parent; when the parent is killed (SIGKILL, an
OOM kill, a closed terminal) nothing tells them, and they would stay: ~40 MB each, with
multiprocessing's resource tracker beside them. Each worker here checks every
``WATCH_SECONDS`` that its parent is still the process that started it, and exits when
it is not (it was re-parented); the tracker then sees its pipe close and exits too.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import concurrent.futures

WATCH_SECONDS = 0.5


def process_pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes that exit within about a second of their
    parent's death. (Spawn, not fork: the caller may have threads, whose locks a fork
    would copy.)"""
    # Imported here: a one-job export (most runs) starts faster without them.
    import concurrent.futures
    import multiprocessing

    return concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=watch_parent,
        initargs=(os.getpid(),),
    )


def watch_parent(parent: int) -> None:
    """In a worker: a daemon thread that ends the process once ``parent`` is gone."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(1)  # no cleanup to wait for: the parent that wanted the result is gone

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def results_in_order[T](
    workers: int, call: Callable[..., T], calls: Iterable[tuple[Any, ...]]
) -> Iterator[T]:
    """``call(*arguments)`` for each of ``calls`` in a ``process_pool``, the results in
    the order given; what was not started is cancelled when the caller stops early.
    One worker or fewer: each call in this process, as it is asked for (no pool to
    start, nothing pickled)."""
    if workers <= 1:
        for arguments in calls:
            yield call(*arguments)
        return
    with process_pool(workers) as pool:
        futures = [pool.submit(call, *arguments) for arguments in calls]
        try:
            for future in futures:
                yield future.result()
        finally:
            for future in futures:
                future.cancel()
