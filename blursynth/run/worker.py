"""What a renderer may use besides its spec, passed to it explicitly.

A renderer is ``render(spec, worker=None) -> Sample``. The spec alone decides
the sample's content; the :class:`Worker` only decides how fast it is made: how
many CPU threads the call may use, and a place where the renderer keeps things
worth reusing for the next spec the same worker renders (an open video, a
decoding thread and the frames it has decoded ahead, a panorama on the GPU).
The engine makes one :class:`Worker` per worker process and hands it to every
call; a renderer called on its own gets a fresh one (serial, nothing kept).
"""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

T = TypeVar("T")


class Worker:
    """Resources of one worker process, handed to every render call.

    Parameters
    ----------
    threads : int
        CPU threads the renderer may use (the engine gives cores divided by
        workers for local runs, 1 on a Dask cluster). With 1 a renderer stays
        serial; with more it may, e.g., decode ahead on a spare thread.
    """

    def __init__(self, threads: int = 1):
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        self.threads = int(threads)
        self._state: dict = {}
        # The specs this worker renders next, in order (set by the engine before
        # each call; empty when unknown). A renderer may prepare for them, e.g.
        # load their source on a spare thread; what it renders never depends on them.
        self.upcoming: Sequence = ()

    def state(self, key, make: Callable[[], T]) -> T:
        """The object kept under ``key``, made by ``make()`` on first use.

        Parameters
        ----------
        key : hashable
            Chosen by the renderer (e.g. ``"highspeed.decoder"``).
        make : callable
            Builds the object when the worker has none under ``key``.

        Returns
        -------
        object
            The same object for every call of this worker.
        """
        if key not in self._state:
            self._state[key] = make()
        return self._state[key]

    def drop(self, key) -> None:
        """Forget what is kept under ``key`` (closing it, if it has ``close``)."""
        obj = self._state.pop(key, None)
        close = getattr(obj, "close", None)
        if close is not None:
            close()
