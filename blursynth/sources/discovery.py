"""The one source walker: ids, duplicates, probing and the skip list.

Both pipelines find their sources the same way. Each ``--src`` entry is a file
or a folder searched recursively (symbolic links followed, but no folder
entered twice; hidden files and folders ignored, folders visited in sorted
order; a FIFO, socket or device refused). A source's id is its path
relative to the entry it was found under, POSIX-style, so ids are stable across
machines; a file given directly is known by its name. What counts as a source
(a frame folder, a video, a panorama) and how it is checked is the caller's
part: a :class:`Candidates` function lists ``(id, probe)`` pairs for one
``--src`` entry, and each ``probe`` returns the checked source or raises
:class:`~blursynth.errors.BadSourceError`.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

from blursynth.errors import BadSourceError, BlursynthError
from blursynth.infiles import file_kind

T = TypeVar("T")
Probe = Callable[[], T]
Candidates = Callable[[Path], Iterable[tuple[str, Probe]]]


def walk(root: Path) -> Iterator[tuple[Path, str, list[str]]]:
    """Every folder under ``root`` with its visible files, in a stable order.

    Folders are visited depth first, sub-folders in sorted order; symbolic
    links are followed, but no folder is entered twice (by device and inode):
    a link to a folder that is also reachable under ``root`` without links is
    not followed (the footage keeps the id of its real path), and of two
    links to one folder elsewhere only the first is. So ``ln -s . loop`` or
    two links that point at each other neither hang the walk nor yield the
    same footage under many ids (issue 19). A visible entry that is neither
    a regular file nor a folder (a FIFO, a socket, a device) is refused:
    reading one would hang or never end. A dangling link is listed as a file,
    for the caller's probe to refuse. Folders that cannot be listed are passed
    over, as :func:`os.walk` does.

    Parameters
    ----------
    root : Path
        A folder.

    Yields
    ------
    folder : Path
        The folder.
    rel : str
        Its path relative to ``root``, POSIX-style (``"."`` for ``root``).
    files : list of str
        Names of the files in it that do not start with ``.``, sorted.

    Raises
    ------
    BlursynthError
        An entry that is not a regular file or a folder, named.
    """
    root = Path(root)
    real = set()  # the folders reached without following a link
    for key, _, entries, below in _folders(root):
        real.add(key)
        below.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
    for _, folder, entries, below in _folders(root):
        dirs, files = [], []
        for entry in entries:
            if entry.is_dir():  # follows links, like is_file
                if entry.is_symlink() and _key(entry.path) in real:
                    continue  # walked under its real path
                dirs.append(entry.name)
            elif entry.is_file():
                files.append(entry.name)
            else:
                refuse_special(folder / entry.name)
                files.append(entry.name)  # a dangling link
        below.extend(folder / d for d in sorted(dirs))
        yield folder, folder.relative_to(root).as_posix(), sorted(files)


def _key(path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _folders(root: Path) -> Iterator[tuple[tuple[int, int], Path, list[os.DirEntry], list]]:
    """Depth first from ``root``, each folder (by device and inode) once, unlistable ones passed over.

    Yields ``(key, folder, entries, below)``: the folder's (device, inode), the
    folder, its visible entries, and an empty list that the caller fills with
    the sub-folders to visit next, in order.
    """
    visited: set[tuple[int, int]] = set()
    todo = [root]
    while todo:
        folder = todo.pop()
        key = _key(folder)
        if key is None or key in visited:
            continue
        visited.add(key)
        try:
            with os.scandir(folder) as it:
                entries = [e for e in it if not e.name.startswith(".")]
        except OSError:
            continue
        below: list = []
        yield key, Path(folder), entries, below
        todo.extend(reversed(below))


def refuse_special(path: Path, option: str = "--src") -> None:
    """Raise :class:`BlursynthError` naming ``path`` when it exists and is not a regular file or folder.

    A FIFO, socket or device in ``--src`` (or ``deblur``'s INPUT: ``option``)
    would hang the probe that opens it (or, for ``/dev/zero``, never end).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # missing or a dangling link: the caller says so
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise BlursynthError(f"{option} {path}: is {file_kind(mode)}, not a regular file or a folder "
                             "(reading it would hang); remove it")


def relative_id(rel: str, name: str) -> str:
    """The id of file ``name`` in the folder ``rel`` (as :func:`walk` yields them).

    Parameters
    ----------
    rel : str
        The folder, relative to its ``--src`` root (``"."`` for the root).
    name : str
        The file name.

    Returns
    -------
    str
        ``rel/name``, or ``name`` in the root.
    """
    return name if rel == "." else f"{rel}/{name}"


def duplicate_ids(ids: Iterable[str]) -> list[str]:
    """The ids that occur more than once, sorted (linear in the number of ids)."""
    return sorted(i for i, n in Counter(ids).items() if n > 1)


def discover(sources: Sequence[str | Path], candidates: Candidates, *, nothing_found: str,
             noun: str, skip_bad: bool = False) -> tuple[list, list[dict]]:
    """Find and probe every source under ``sources``.

    Parameters
    ----------
    sources : sequence of str or Path
        The ``--src`` entries.
    candidates : callable
        ``candidates(root)`` lists ``(id, probe)`` for one existing entry
        (typically through :func:`walk`); it raises
        :class:`~blursynth.errors.BlursynthError` for an entry that cannot hold
        sources (e.g. a file of the wrong type).
    nothing_found : str
        What the error says was not found when no entry holds a candidate.
    noun : str
        What a source is called in the duplicate-id error (``"clip"``, ``"panorama"``).
    skip_bad : bool
        Leave unusable sources out and list them, instead of raising.

    Returns
    -------
    found : list
        The probed sources, sorted by id.
    skipped : list of dict
        ``{"source": id, "reason": ...}`` per unusable source (``skip_bad``).

    Raises
    ------
    BlursynthError
        No entries, an entry that does not exist, nothing found, or two
        candidates with the same id.
    BadSourceError
        The first unusable source, without ``skip_bad``.
    """
    roots = [Path(s) for s in sources]
    if not roots:
        raise BlursynthError("--src: no source given")
    found: list[tuple[str, Probe]] = []
    for root in roots:
        if not root.exists():
            raise BlursynthError(f"--src {root}: no such file or folder")
        refuse_special(root)
        found.extend(candidates(root))
    if not found:
        raise BlursynthError(f"--src {' '.join(map(str, roots))}: {nothing_found}")
    dupes = duplicate_ids(cid for cid, _ in found)
    if dupes:
        raise BlursynthError(
            f"--src: two {noun}s have the same id {dupes[0]!r}; pass their common parent instead")
    probed, skipped = [], []
    for _, probe in sorted(found, key=lambda item: item[0]):
        try:
            probed.append(probe())
        except BadSourceError as exc:
            if not skip_bad:
                raise
            skipped.append({"source": exc.source, "reason": exc.reason})
    return probed, skipped
