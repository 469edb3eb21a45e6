"""What each source file was when a run was planned: its size and modification time.

Frames replaced while a dataset is being made gave a dataset that mixed old and
new frames, and ``verify`` said ok (issue 19). So planning stamps every file a
sample will read (:func:`take`), the spec carries the stamps of its files, the
engine checks them after rendering each sample (:func:`check`: a file that
changed stops the run with one line naming it), each shard records the stamps
of the files its samples were made from (:func:`to_json`, the shard dataset
``source_files``), a resume checks the records of the shards it keeps, and
``blursynth verify --sources`` checks them again later (:func:`change`).

A stamp is ``(path, size, mtime_ns)``: the absolute path (a Dask worker has a
working folder of its own), the size in bytes and ``st_mtime_ns``, both of the
file a symbolic link points to, as that is what is read.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Iterable

from blursynth.errors import BlursynthError

__all__ = ["Stamp", "change", "check", "from_json", "take", "to_json"]

Stamp = tuple[str, int, int]


def take(path: str | Path) -> Stamp:
    """The stamp of ``path`` now (made absolute).

    Raises
    ------
    BlursynthError
        The file cannot be read (gone since it was found, no permission).
    """
    path = Path(path).absolute()
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BlursynthError(f"{path}: cannot read ({exc.strerror})") from None
    return str(path), st.st_size, st.st_mtime_ns


def change(stamp: Stamp) -> str | None:
    """What changed in the file of ``stamp`` since it was taken, or None.

    Returns
    -------
    str or None
        ``"is gone"``, ``"changed size (1,234 -> 1,200 bytes)"`` or
        ``"was modified (at 2024-05-01 12:00:03)"``; None when size and
        modification time are as stamped.
    """
    path, size, mtime_ns = stamp
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "is gone"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if st.st_size != size:
        return f"changed size ({size:,} -> {st.st_size:,} bytes)"
    if st.st_mtime_ns != mtime_ns:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(st.st_mtime_ns / 1e9))
        return f"was modified (at {when})"
    return None


def check(stamps: Iterable[Stamp], since: str = "this run was planned") -> None:
    """Raise unless every file of ``stamps`` is as it was stamped.

    Parameters
    ----------
    stamps : iterable of Stamp
    since : str
        When the stamps were taken, for the message.

    Raises
    ------
    BlursynthError
        Naming the first file that changed and what to do.
    """
    for stamp in stamps:
        what = change(stamp)
        if what is not None:
            raise BlursynthError(
                f"{stamp[0]}: the source file {what} since {since}; a dataset must not mix old and new "
                "frames: restore the file, or make the dataset again in a new --out")


def to_json(stamps: Iterable[Stamp]) -> str:
    """The stamps as a shard records them: a sorted JSON list of ``[path, size, mtime_ns]``, each file once."""
    return json.dumps(sorted({tuple(s) for s in stamps}), separators=(",", ":"))


def from_json(text: str) -> list[Stamp]:
    """The stamps of :func:`to_json`.

    Raises
    ------
    ValueError
        Text that is not such a list.
    """
    try:
        items = json.loads(text)
    except RecursionError:  # a hostile shard: nested lists (shards are read back from anywhere)
        raise ValueError("nested too deeply") from None
    if not isinstance(items, list) or not all(
            isinstance(s, list) and len(s) == 3 and isinstance(s[0], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in s[1:]) for s in items):
        raise ValueError("not a list of [path, size, mtime_ns]")
    return [(s[0], s[1], s[2]) for s in items]
