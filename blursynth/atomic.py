"""Crash-safe file writing: temporary names, fsync and atomic rename.

Every file blursynth publishes is first written under a temporary name beside
its final path (:func:`tmp_path`), flushed to disk, then renamed into place with
:func:`os.replace`, and the folder is fsync'd so the rename itself survives a
crash. A reader therefore sees either the old file or the complete new one.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

# Temporary files are ``NAME.tmp-PID``: unique per writing process, and easy to
# recognize (and delete) after a killed run.
TMP_MARK = ".tmp-"
_TEMPORARY = re.compile(rf"(.+){re.escape(TMP_MARK)}\d+")


def tmp_path(path: Path) -> Path:
    """The temporary name under which this process writes ``path``.

    Parameters
    ----------
    path : Path
        The final path.

    Returns
    -------
    Path
        ``path`` with ``.tmp-<pid>`` appended to its name, in the same folder
        (so that the final rename never crosses file systems).
    """
    path = Path(path)
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")


def final_name(name: str) -> str | None:
    """The name whose temporary ``name`` is: ``NAME`` for ``NAME.tmp-PID``, else None.

    Only that exact form counts (digits after the mark, nothing after them):
    ``notes.tmp-1x`` or ``a.tmp-`` are no temporaries.
    """
    match = _TEMPORARY.fullmatch(name)
    return match.group(1) if match else None


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename inside it) to disk; best effort.

    Parameters
    ----------
    path : Path
        The folder. Folders that cannot be opened (some file systems) are
        left alone.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a closed file's bytes to disk.

    Parameters
    ----------
    path : Path
        The file.
    """
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def publish(tmp: Path, path: Path) -> None:
    """Rename the finished, fsync'd ``tmp`` to ``path`` and flush the folder.

    Parameters
    ----------
    tmp : Path
        The temporary file (see :func:`tmp_path`).
    path : Path
        Its final name; an existing file there is replaced atomically.
    """
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def atomic_write_bytes(path: Path, data: bytes, sync: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Parameters
    ----------
    path : Path
        The final path; its folder must exist.
    data : bytes
        The whole content of the file.
    sync : bool
        fsync the file and its folder. Without it a kill still leaves no
        partial file under the final name (the rename is atomic), but a power
        cut may; an export of many small PNGs skips it per file.
    """
    path = Path(path)
    tmp = tmp_path(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if sync:
        fsync_dir(path.parent)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, as 64 hex digits.

    Parameters
    ----------
    path : Path
        The file, read in 4 MiB blocks.

    Returns
    -------
    str
        The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()
