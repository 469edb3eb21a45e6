"""Local worker processes that die with the process that started them.

Every local parallel step (the engine's shards, ``export``, the measures of
``report`` and ``filter``) runs on joblib's loky pool through
:func:`local_workers`. A loky worker does not watch its parent: after a
``kill -9`` of the main process, workers that were rendering finished their
shard and then waited for the next task, and idle workers waited out loky's
idle timeout (300 s); 26 of 31 kills left workers alive for more than 11 s
(issue 19). So each worker runs :func:`die_with_parent` before its first
task: on Linux the kernel sends it SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``), elsewhere a thread polls the parent. The
workers also run in the caller's current folder (:func:`start_worker`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

import joblib

__all__ = ["die_with_parent", "local_workers", "start_worker"]

# prctl(2) option: the signal the calling process gets when its parent dies.
PR_SET_PDEATHSIG = 1
# How often the portable fallback looks at the parent (seconds).
PARENT_POLL_S = 0.25


def start_worker(parent: int, cwd: str) -> None:
    """Worker initializer: work in ``cwd``, and end this process when process ``parent`` dies.

    ``cwd`` is the folder of the caller when the pool was made: loky keeps a pool
    across calls, and a worker resolves relative paths against its own folder,
    so a caller that changed folder since (a notebook, a test) would have its
    relative paths read elsewhere. :func:`local_workers` passes the current
    folder, so a pool made in another folder is not reused.
    """
    os.chdir(cwd)
    die_with_parent(parent)


def die_with_parent(parent: int) -> None:
    """End this process when process ``parent`` dies.

    Linux delivers ``SIGKILL`` at the parent's death (``PR_SET_PDEATHSIG``),
    even while the worker is deep in OpenCV or HDF5 code. The signal is tied to
    the thread that started the worker; loky starts its workers from the thread
    that submits work (the main thread of a command) or from its own manager
    thread, which lives as long as the pool. Elsewhere a daemon thread polls
    ``os.getppid()``. A parent that died before this ran is caught by
    comparing ``os.getppid()`` with ``parent`` afterwards.

    Parameters
    ----------
    parent : int
        The pid of the process that starts the pool.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    else:  # pragma: no cover - not Linux
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="blursynth-parent").start()
    if os.getppid() != parent:  # the parent is already gone (re-parented to init or a subreaper)
        os._exit(1)


def _watch_parent(parent: int) -> None:  # pragma: no cover - not Linux
    """End this process once ``parent`` is no longer its parent."""
    while os.getppid() == parent:
        threading.Event().wait(PARENT_POLL_S)
    os._exit(1)


def local_workers():
    """joblib's configuration for a local pool whose workers die with this process.

    Use it around ``joblib.Parallel`` (without a ``backend`` argument)::

        with local_workers():
            results = joblib.Parallel(n_jobs=4)(tasks)

    Returns
    -------
    contextlib.AbstractContextManager
        ``joblib.parallel_config`` with the loky backend and
        :func:`start_worker` as the worker initializer. The arguments are
        the same on every call from one folder, so loky keeps reusing one pool.
    """
    return joblib.parallel_config(backend="loky", initializer=start_worker, initargs=(os.getpid(), os.getcwd()))
