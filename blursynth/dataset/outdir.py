"""The one owner of what a command writes: output folders and output files.

Every command that writes goes through this module (issue 19), so that the
rules below hold everywhere and exist once.

**Folders** (a dataset, an export, a training run, deblurred frames):
:func:`output_folder` creates the folder when needed and holds its lock
(:func:`locked`) for the whole command. The lock is ``FOLDER/.blursynth.lock``,
an exclusive ``flock`` on a file opened without following a symbolic link and
without truncating it, so a planted link can neither redirect nor empty another
file, and a second command on the same folder stops with one line. When the
command fails, a folder it created that holds nothing but its lock is removed
again (with the parents it created), so an error leaves no empty folder behind.

**Temporaries.** A file is written as ``NAME.tmp-PID``
(:func:`blursynth.atomic.tmp_path`) and renamed to ``NAME`` when complete.
:func:`remove_own` with :func:`temporaries_of` deletes only files of that
exact form, for the names ``NAME`` the command itself writes, only in the
folders it writes them to; a user's ``notes.tmp-1`` anywhere, or
``frame.png.tmp-1`` beside files the command does not make, is never touched.

**Files** (a report, a preview, a selection, a split file, an evaluation
report): :func:`check_output_file` refuses, in one line,

* a file of a dataset (``manifest.json``, a shard, a lock, in a folder that
  holds a ``manifest.json``), even with ``overwrite``;
* an existing file that the command did not make, unless ``overwrite``;
* a missing folder, one that takes no new file (found by creating and
  removing the file's temporary, which also works for root and read-only
  mounts), and a name that is a folder.

How a command knows that it made a file: every file it writes carries the
command's *marker* (:class:`OutputMarker`) in its first 4 KiB, and a file without
it was made by someone else. The markers are the ``"format": "blursynth-…/1"``
tag that every JSON document of blursynth starts with, ``<meta
name='generator' content='blursynth-report/1'>`` in the report's page, and the
PNG text chunk ``Software: blursynth-preview/1`` of a preview. A symbolic link
is never taken for a file the command made. :func:`write_output` writes the
bytes atomically (:func:`blursynth.atomic.atomic_write_bytes`), with one line
when the folder cannot be written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterator

from blursynth.atomic import atomic_write_bytes, final_name, tmp_path
from blursynth.errors import BlursynthError
from blursynth.dataset.format import MANIFEST, is_own_file

LOCK = ".blursynth.lock"
# How much of an existing file is read to find a command's marker.
MARKER_BYTES = 4096


# ------------------------------------------------------------------ folders
@contextlib.contextmanager
def locked(folder: Path, option: str = "--out") -> Iterator[None]:
    """Hold ``folder/.blursynth.lock`` (an exclusive ``flock``) for the whole block.

    The lock file is opened without following a symbolic link and without
    truncating (``O_CREAT`` without ``O_TRUNC``), so a hostile or stray
    ``.blursynth.lock`` can neither redirect nor empty another file. It is
    never deleted while a command may still want it: unlinking it on exit
    would let a command waiting on the old file and a new one on a fresh file
    both believe they hold the lock.

    Parameters
    ----------
    folder : Path
        An existing folder.
    option : str
        How messages name the folder's option (``--out``, ``--run``).

    Raises
    ------
    BlursynthError
        The lock is a symbolic link or not a regular file (a folder, a FIFO),
        cannot be opened, or another command holds it.
    """
    path = Path(folder) / LOCK
    try:
        # O_NONBLOCK: a FIFO planted as the lock must not block the open.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BlursynthError(f"{option} {folder}: {LOCK} is a symbolic link; blursynth does not follow it "
                                 "(remove it if no command is writing there)") from None
        if exc.errno == errno.EISDIR:
            raise BlursynthError(f"{option} {folder}: {LOCK} is not a regular file; remove it") from None
        raise BlursynthError(f"{option} {folder}: cannot open the lock file {LOCK} ({exc.strerror})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BlursynthError(f"{option} {folder}: {LOCK} is not a regular file; remove it")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BlursynthError(f"{option} {folder}: another blursynth run is writing there") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _first_missing(folder: Path) -> Path | None:
    """The topmost of ``folder`` and its parents that does not exist yet (None: ``folder`` exists)."""
    top = None
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        top = path
    return top


def make_folder(folder: Path, option: str = "--out") -> Path | None:
    """Create ``folder`` (and missing parents) if needed; check that it is a writable folder.

    Returns
    -------
    Path or None
        The topmost folder this call created, None when ``folder`` existed.
    """
    folder = Path(folder)
    top = _first_missing(folder)
    if os.path.lexists(folder) and not folder.is_dir():
        raise BlursynthError(f"{option} {folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BlursynthError(f"{option} {folder}: cannot create the folder ({exc.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BlursynthError(f"{option} {folder}: the folder is not writable")
    return top


def _discard(folder: Path, top: Path) -> None:
    """Remove ``folder`` if it holds nothing but its lock, then its parents up to ``top`` while empty."""
    try:
        entries = os.listdir(folder)
        if set(entries) - {LOCK}:
            return
        if entries:
            os.unlink(folder / LOCK)
        os.rmdir(folder)
        for parent in folder.parents:
            if parent == top.parent:
                break
            os.rmdir(parent)
    except OSError:
        pass  # not empty (or not ours to remove): leave it


@contextlib.contextmanager
def output_folder(folder: str | Path, option: str = "--out") -> Iterator[bool]:
    """Create ``folder`` if needed and hold its lock for the whole block.

    If the block fails and this call created the folder, the folder is
    removed again when it holds nothing but the lock (no empty folder is left
    by an error); a folder that existed is left as it is.

    Parameters
    ----------
    folder : str or Path
        The output folder.
    option : str
        How messages name it.

    Yields
    ------
    bool
        Whether this call created the folder.
    """
    folder = Path(folder)
    top = make_folder(folder, option)
    with locked(folder, option):
        try:
            yield top is not None
        except BaseException:
            if top is not None:
                _discard(folder, top)  # still under the lock: nobody else is writing there
            raise


def entries(folder: Path) -> list[str]:
    """The names in ``folder`` other than its lock, sorted."""
    return sorted(name for name in os.listdir(folder) if name != LOCK)


# -------------------------------------------------------------- temporaries
def temporaries_of(names: Collection[str]) -> Callable[[str], bool]:
    """A test of file names: ``NAME.tmp-PID`` for a ``NAME`` in ``names``, and nothing else."""
    names = frozenset(names)

    def test(name: str) -> bool:
        return final_name(name) in names

    return test


def remove_own(folder: Path, is_own: Callable[[str], bool]) -> list[str]:
    """Delete the files in ``folder`` (not in its sub-folders) that the command names as its own.

    Used for the temporaries a killed command left (``is_own`` from
    :func:`temporaries_of`, or a dataset's exact patterns) and for files a
    command made and no longer needs (an export's LMDB parts).

    Parameters
    ----------
    folder : Path
        A folder the command writes into; a missing one, or a symbolic link
        to one, is left alone.
    is_own : callable
        ``name -> bool``: whether ``name`` is a file this command writes in
        ``folder``. Folders are never removed, whatever their name.

    Returns
    -------
    list of str
        The names removed.
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return []
    removed = []
    with os.scandir(folder) as it:
        for entry in it:
            if is_own(entry.name) and not entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                removed.append(entry.name)
    return removed


def real_subfolder(root: Path, relative: str | Path) -> bool:
    """Whether ``root / relative`` exists as a folder reached through no symbolic link below ``root``."""
    path = Path(root)
    for part in Path(relative).parts:
        if part in ("..", "/"):
            return False
        path = path / part
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return False
        except OSError:
            return False
    return True


def subfolder(root: Path, relative: str | Path, option: str = "--out") -> Path:
    """``root / relative`` as a real folder inside ``root``: created where missing, never through a link.

    A component that is a symbolic link (which could lead outside ``root``)
    or a file stops the command with one line.
    """
    root, relative = Path(root), Path(relative)
    if relative.is_absolute() or ".." in relative.parts:
        raise BlursynthError(f"{option} {root}: refusing to write {str(relative)!r} outside it")
    path = root
    for part in relative.parts:
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            try:
                path.mkdir()
            except FileExistsError:  # made meanwhile by another worker of the same command
                mode = os.lstat(path).st_mode
            except OSError as exc:
                raise BlursynthError(f"{option} {root}: cannot create {path.relative_to(root)} "
                                     f"({exc.strerror})") from None
            else:
                continue
        if stat.S_ISLNK(mode):
            raise BlursynthError(f"{option} {root}: {path.relative_to(root)} is a symbolic link; blursynth "
                                 "does not write through it (remove it)")
        if not stat.S_ISDIR(mode):
            raise BlursynthError(f"{option} {root}: {path.relative_to(root)} is a file where blursynth "
                                 "needs a folder")
    return path


# -------------------------------------------------------------------- files
@dataclass(frozen=True)
class OutputMarker:
    """What one command writes into its output files, so that it knows them again.

    Attributes
    ----------
    command : str
        The command, for messages (``"blursynth report"``).
    marker : bytes
        Found in the first 4 KiB of every file of this sort the command writes.
    """

    command: str
    marker: bytes

    @classmethod
    def json(cls, command: str, fmt: str) -> "OutputMarker":
        """The marker of a JSON document whose first key is ``"format": fmt`` (:func:`json_bytes`)."""
        return cls(command, json.dumps({"format": fmt})[1:-1].encode())

    def made(self, path: Path) -> bool:
        """Whether ``path`` is a regular file (not a link) that carries this marker."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            return self.marker in os.read(fd, MARKER_BYTES)
        finally:
            os.close(fd)




def json_bytes(doc: dict) -> bytes:
    """The bytes blursynth writes for a JSON document: ``format`` first, one-space indent, a final newline."""
    if "format" in doc:
        doc = {"format": doc["format"], **doc}
    return (json.dumps(doc, indent=1) + "\n").encode()


def dataset_file(path: Path) -> bool:
    """Whether ``path`` is a file of a blursynth dataset or a lock of any output folder.

    That is ``manifest.json``, a shard or a temporary of one
    (:func:`blursynth.dataset.format.is_own_file`) in a folder holding a
    ``manifest.json``, or a ``.blursynth.lock`` anywhere.
    """
    path = Path(path)
    return path.name == LOCK or (is_own_file(path.name) and (path.parent / MANIFEST).is_file())


def _check_writable(path: Path, option: str) -> None:
    """Create and remove ``path``'s temporary (:func:`blursynth.atomic.tmp_path`) to learn, before
    any work, whether the folder takes a new file: permissions alone do not tell (root, a
    read-only mount, a pseudo file system)."""
    tmp = tmp_path(path)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
    except FileExistsError:
        return  # this process's own temporary: the folder takes files
    except OSError as exc:
        raise BlursynthError(f"{option} {path}: cannot write in the folder {path.parent} "
                             f"({exc.strerror})") from None
    os.unlink(tmp)


def check_output_file(path: str | Path, output: OutputMarker, *, overwrite: bool = False,
                      option: str = "--out") -> Path:
    """Check that ``path`` may be written by ``output.command``; one line if not.

    Parameters
    ----------
    path : str or Path
        The file to write.
    output : OutputMarker
        The command and its marker.
    overwrite : bool
        Replace an existing file that the command did not make (never a
        dataset's file, see :func:`dataset_file`).
    option : str
        How messages name the file's option.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise BlursynthError(f"{option} {path}: the folder {folder} does not exist")
    _check_writable(path, option)
    if dataset_file(path):
        raise BlursynthError(f"{option} {path}: is a file of the dataset in {folder}; blursynth never "
                             "replaces it (choose another name)")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if stat.S_ISDIR(mode):
        raise BlursynthError(f"{option} {path}: is a folder; give a file name")
    if not overwrite and not output.made(path):
        raise BlursynthError(f"{option} {path}: exists and was not written by {output.command}; "
                             "pass --overwrite to replace it, or choose another name")
    return path


def write_output(path: str | Path, data: bytes, output: OutputMarker, *, overwrite: bool = False,
                 option: str = "--out") -> Path:
    """Check ``path`` (:func:`check_output_file`) and write ``data`` to it atomically.

    The file appears complete or not at all; a write that fails (a full disk,
    a folder made read-only meanwhile) is one line and leaves no temporary.
    """
    path = check_output_file(path, output, overwrite=overwrite, option=option)
    if output.marker not in data[:MARKER_BYTES]:  # pragma: no cover - a bug of the caller, not of the user
        raise ValueError(f"{output.command}: the file to write lacks its marker {output.marker!r}")
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise BlursynthError(f"{option} {path}: cannot write the file ({exc.strerror})") from None
    return path


__all__ = ["LOCK", "OutputMarker", "check_output_file", "dataset_file", "entries", "json_bytes",
           "locked", "make_folder", "output_folder", "real_subfolder", "remove_own", "subfolder", "temporaries_of",
           "write_output"]
