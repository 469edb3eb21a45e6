"""The progress bar of a run, moving per sample while shards are rendered in other processes.

A worker writes the number of samples in the shard it is making to a small file
beside the temporary shard (:func:`progress_file`); :class:`LiveProgress` in the
parent adds those counts to the samples of the finished shards twice a second.
The files carry the temporary mark (:data:`blursynth.atomic.TMP_MARK`), so the
clean-up of a killed run removes them with the other temporaries.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from blursynth.atomic import TMP_MARK


def progress_file(shard: Path) -> Path:
    """Where this process reports its progress on ``shard``: ``shard-NNNNN.h5.tmp-PID.progress``."""
    shard = Path(shard)
    return shard.with_name(f"{shard.name}{TMP_MARK}{os.getpid()}.progress")


def progress_bar(total: int, initial: int, quiet: bool, desc: str):
    """A tqdm bar on stderr counting samples.

    Parameters
    ----------
    total : int
        Samples planned.
    initial : int
        Samples already made (resumed).
    quiet : bool
        Disable the bar.
    desc : str
        Its label (the dataset kind).
    """
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, disable=quiet, unit="sample", desc=desc,
                file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


class LiveProgress:
    """Moves ``bar`` per sample, not per shard.

    Parameters
    ----------
    bar : tqdm
        The bar (a disabled bar starts no polling thread).
    out : Path
        The dataset folder the workers write their progress files in.
    done : int
        Samples in shards already finished; the caller raises :attr:`done`
        as more shards finish.
    """

    def __init__(self, bar, out: Path, done: int):
        self.bar, self.out, self.done = bar, Path(out), done
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        if not bar.disable:
            self._thread.start()

    def in_flight(self) -> int:
        """Samples written so far into shards that are not finished yet."""
        total = 0
        for p in self.out.glob("shard-*.progress"):
            try:
                total += int(p.read_text() or 0)
            except (OSError, ValueError):  # gone or half-written: next poll
                pass
        return total

    def _poll(self):
        while not self._stop.wait(0.5):
            self.show(self.in_flight())

    def show(self, partial: int = 0) -> None:
        """Set the bar to the finished samples plus ``partial``, never past the total and
        never back.

        A count can drop for a moment: a worker removes its progress file as its
        shard finishes, before the parent adds the shard to :attr:`done`; the
        parent shows a finished shard without the partial counts of the others;
        a shard that meets a bad source (``--skip-bad``) starts again. The bar
        then waits until the count passes what it showed.
        """
        with self._lock:  # the polling thread and the caller both show
            self.bar.n = max(self.bar.n, min(self.bar.total, self.done + partial))
            self.bar.refresh()

    def finish(self) -> None:
        """Stop polling, show the final count and close the bar."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.show()
        self.bar.close()
