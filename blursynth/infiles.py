"""Files blursynth reads by name: refused by type before they are opened, read within a size cap.

A recipe, a selection, a split file, a manifest, a ``crf:`` curve or a
checkpoint is named by the user, and a name can point at anything: a FIFO (the
read waits for a writer forever), ``/dev/zero`` (the read never ends and fills
memory), a socket or a folder (issue 19, items 4 and 8). Every such file goes
through :func:`open_input` or :func:`read_input`:

* the path is ``stat``-ed first and anything but a regular file is refused with
  one line that says what it is, before any ``open``;
* a file larger than the cap of its kind (:data:`CAPS`) is refused the same way;
* the file is then opened non-blocking and checked again on the open descriptor
  (``fstat``), so that a file swapped for a FIFO between the two is refused too,
  and no more than the cap is ever read.

Source footage is walked by :mod:`blursynth.sources.discovery`, which uses
:func:`file_kind` to name what it refuses.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from blursynth.errors import BlursynthError

__all__ = ["CAPS", "file_kind", "open_input", "read_input"]

MiB = 2**20
GiB = 2**30

# The largest file of each kind blursynth reads, in bytes: far above any real
# one, far below what exhausts memory. A selection of the ten million samples a
# run may plan (budget.MAX_PLANNED_SAMPLES) is about 120 MB of JSON.
CAPS = {
    "recipe": 1 * MiB,
    "response curve": 16 * MiB,
    "selection": 256 * MiB,
    "split file": 256 * MiB,
    "manifest": 512 * MiB,
    "checkpoint": 8 * GiB,
    "export state": 512 * MiB,
    "deblur record": 256 * MiB,
    "cache file": 64 * MiB,
}


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words (``"a FIFO"``, ``"a folder"``, ...)."""
    for test, words in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
                        (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return words
    return "not a regular file"


def _human(n: int) -> str:
    return f"{n / GiB:g} GiB" if n >= GiB else f"{n / MiB:g} MiB" if n >= MiB else f"{n} bytes"


def _check(st: os.stat_result, name: str, what: str, cap: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise BlursynthError(f"{name}: is {file_kind(st.st_mode)}, not a regular file; give the {what} "
                             "as a file")
    if st.st_size > cap:
        raise BlursynthError(f"{name}: {st.st_size:,} bytes is more than any {what} "
                             f"(at most {_human(cap)}); is it the right file?")


def open_input(path: str | Path, what: str, *, name: str | None = None, missing: str | None = None,
               cap: int | None = None) -> BinaryIO:
    """Open a file the user named, for reading, after checking its type and size.

    Parameters
    ----------
    path : str or Path
        The file (symbolic links are followed: the target is checked).
    what : str
        Its kind, a key of :data:`CAPS` (``"selection"``, ``"checkpoint"``, ...),
        also said in messages.
    name : str, optional
        How messages name it (e.g. ``"--select sel.json"``); default the path.
    missing : str, optional
        The whole message when the file does not exist; default ``"NAME: cannot read the WHAT: no such file"``.
    cap : int, optional
        Size cap in bytes; default ``CAPS[what]``.

    Returns
    -------
    file object
        Opened in binary mode; the caller closes it.

    Raises
    ------
    BlursynthError
        Missing, unreadable, not a regular file (FIFO, socket, device, folder),
        or larger than the cap. One line naming the file.
    """
    name = str(path) if name is None else name
    cap = CAPS[what] if cap is None else cap
    try:
        _check(os.stat(path), name, what, cap)
        # O_NONBLOCK: opening a FIFO swapped in after the stat returns at once
        # instead of waiting for a writer; the fstat below then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise BlursynthError(missing or f"{name}: cannot read the {what}: no such file") from None
    except OSError as exc:
        raise BlursynthError(f"{name}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        _check(os.fstat(fd), name, what, cap)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_input(path: str | Path, what: str, *, name: str | None = None, missing: str | None = None,
               cap: int | None = None) -> bytes:
    """The bytes of a file the user named, checked as :func:`open_input` does.

    Reads at most the cap (plus one byte, to see a file that grew past it
    after the check).

    Returns
    -------
    bytes

    Raises
    ------
    BlursynthError
        As :func:`open_input`, or the file grew past the cap while read.
    """
    name = str(path) if name is None else name
    cap = CAPS[what] if cap is None else cap
    with open_input(path, what, name=name, missing=missing, cap=cap) as fh:
        try:
            data = fh.read(cap + 1)
        except OSError as exc:
            raise BlursynthError(f"{name}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > cap:
        raise BlursynthError(f"{name}: more than {_human(cap)}, more than any {what}; is it the right file?")
    return data
