"""How Ctrl-C (SIGINT) and SIGTERM stop a long run: one installer, two policies.

Both policies install their handlers with :func:`handling` (in the main thread
only, the previous handlers back on the way out), and both end the same way at
the CLI: one line (an :class:`~blursynth.errors.InterruptedRun`, or the
``KeyboardInterrupt`` of a Ctrl-C) and the exit status 128 + the signal's number.

* **Stop now** (synthesis, :mod:`blursynth.run.engine`): SIGTERM raises
  ``InterruptedRun`` at once (:func:`stop_on_sigterm`), as SIGINT raises
  ``KeyboardInterrupt``; either leaves the wait for the workers' results, the
  workers are stopped, temporaries removed, and a re-run resumes from the
  finished shards. A second SIGTERM while cleaning up is ignored. Worker
  processes ignore SIGINT (:func:`spawning_ignores_sigint`,
  :func:`leave_interrupts_to_the_parent`): the parent stops them.
* **Stop after the step** (training, :mod:`reference_models.train_control`): SIGINT and
  SIGTERM only set a flag (:func:`stop_between_steps`) that the loop reads
  between steps, so the step ends, every DDP rank learns of it in the same
  vote, and the checkpoint of that step is written; a second Ctrl-C stops at
  once (``KeyboardInterrupt``).

The policies stay two on purpose. A shard cut off anywhere is a temporary
that resume makes again, and the engine waits on its workers' results, which
a flag would only be read after (a sample can take minutes). A training step
cut off half way would leave the weights out of step with the optimizer state
and with the other ranks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Callable, Iterator, Union

from blursynth.errors import InterruptedRun

Handler = Union[Callable, int]  # a function, or signal.SIG_IGN / SIG_DFL


@contextlib.contextmanager
def handling(handlers: dict[int, Handler]) -> Iterator[bool]:
    """Install ``handlers`` (signal number -> handler) for the ``with`` block.

    Python lets only the main thread set handlers; in another thread nothing
    is installed (the ``with`` yields False). The previous handlers come back
    on the way out, also when a handler raised.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield True
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into :class:`~blursynth.errors.InterruptedRun` in the main
    thread, as SIGINT becomes KeyboardInterrupt, so that both stop the workers
    (joblib kills them when an exception leaves the results loop), remove
    temporaries and leave a resumable dataset. A second SIGTERM while cleaning
    up is ignored."""

    def handler(signum, _frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise InterruptedRun(signum)

    with handling({signal.SIGTERM: handler}):
        yield


def leave_interrupts_to_the_parent(parent: int | None) -> None:
    """In a worker process of a local run, ignore Ctrl-C: a terminal sends
    SIGINT to the whole process group, and the parent (pid ``parent``) stops
    its workers itself, so no worker prints a traceback of its own."""
    if parent is not None and os.getpid() != parent and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def spawning_ignores_sigint(local: bool) -> Iterator[None]:
    """Worker processes started in here ignore SIGINT from their first instruction.

    A disposition of SIG_IGN survives fork and exec, and Python leaves an
    inherited SIG_IGN for SIGINT in place, so a Ctrl-C that reaches the process
    group while a worker is still importing its modules does not print that
    worker's traceback (:func:`leave_interrupts_to_the_parent` only takes
    effect once a task runs). The parent ignores Ctrl-C for the moment it takes
    joblib to start the pool (a few tens of milliseconds).
    """
    if not local:
        yield
        return
    with handling({signal.SIGINT: signal.SIG_IGN}):
        yield


class StopFlag:
    """The signal that asked a training loop to stop (``signum``; None: none yet)."""

    def __init__(self):
        self.signum: int | None = None

    def handle(self, signum, _frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signum = signum


@contextlib.contextmanager
def stop_between_steps() -> Iterator[StopFlag]:
    """Turn SIGINT/SIGTERM into a :class:`StopFlag` that the loop reads between steps (main thread only)."""
    flag = StopFlag()
    with handling({signal.SIGINT: flag.handle, signal.SIGTERM: flag.handle}):
        yield flag
