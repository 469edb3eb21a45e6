"""One shard opened for reading: checked reads, one-line errors, lazy handles.

Every reader opens shards through :func:`open_shard` (read-only, no HDF5 file
locking: shards are immutable), so that a damaged file or chunk is one
:class:`~blursynth.errors.BlursynthError` naming the shard, whoever reads.
:class:`ShardFiles` keeps the handles of one dataset folder, opened on first
use and once per process. The dataset as a whole is read through
:class:`blursynth.dataset.reader.SampleIndex`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import h5py
import numpy as np

from blursynth.errors import BlursynthError
from blursynth.sources import stamps
from blursynth.sources.stamps import Stamp

__all__ = ["CheckedDataset", "Shard", "ShardFiles", "damaged", "open_shard", "read_meta", "reading",
           "recorded_sources"]


class Shard(h5py.File):
    """A shard opened for reading (see :func:`open_shard`).

    Reading a frame array whose chunk fails its Fletcher-32 checksum (HDF5
    raises ``OSError``) raises :class:`~blursynth.errors.BlursynthError`
    naming the shard, whoever reads: ``preview``, tools, training, evaluation.
    """

    def __getitem__(self, name):
        obj = super().__getitem__(name)
        return CheckedDataset(obj, self.filename) if isinstance(obj, h5py.Dataset) else obj


class CheckedDataset:
    """An ``h5py.Dataset`` whose reads name the shard when the data is damaged."""

    def __init__(self, dataset: h5py.Dataset, filename: str):
        self._dataset, self._filename = dataset, filename

    def __getitem__(self, key):
        try:
            return self._dataset[key]
        except OSError as exc:
            raise damaged(self._filename, f"cannot read {self._dataset.name.lstrip('/')} ({exc})") from None

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self[()], dtype=dtype)

    def __len__(self) -> int:
        return len(self._dataset)

    def __getattr__(self, name):  # shape, dtype, chunks, attrs, asstr, ...
        return getattr(self._dataset, name)


def damaged(path, why: str) -> BlursynthError:
    """The one-line error for a shard that cannot be read as written."""
    return BlursynthError(f"{path}: damaged shard: {why}; check the dataset with 'blursynth verify' "
                          "and re-run the command that made it to remake the shard")


def open_shard(path: Path) -> Shard:
    """Open a shard read-only, without HDF5 file locking (shards are immutable).

    Raises
    ------
    BlursynthError
        The file is not a readable HDF5 file (a damaged header, a truncated
        file), naming it.
    """
    try:
        return Shard(path, "r", locking=False)
    except FileNotFoundError:
        raise BlursynthError(f"{path}: missing shard; re-run the command that made the dataset") from None
    except OSError as exc:
        raise damaged(path, f"not a readable HDF5 file ({exc})") from None


@contextlib.contextmanager
def reading(path):
    """Turn what a damaged shard raises while being read (a missing attribute or
    group, an undecodable chunk) into one :class:`~blursynth.errors.BlursynthError`."""
    try:
        yield
    except BlursynthError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise damaged(path, f"{type(exc).__name__}: {exc}") from None


def recorded_sources(path: Path) -> list[Stamp] | None:
    """The source files a shard records it was made from (its string dataset ``source_files``).

    Returns
    -------
    list of Stamp or None
        ``(path, size, mtime_ns)`` per file (:mod:`blursynth.sources.stamps`);
        None for a shard that records none (made by an older blursynth, or
        from specs without stamps).

    Raises
    ------
    BlursynthError
        A damaged shard or record, naming the shard.
    """
    with open_shard(path) as f, reading(path):
        if "source_files" not in f:
            return None
        return stamps.from_json(f["source_files"].asstr()[()])


def read_meta(shard: h5py.File) -> dict[str, np.ndarray]:
    """The ``meta`` group of an open shard: one array per field, strings decoded."""
    out = {}
    for key, ds in shard["meta"].items():
        arr = ds[()]
        if ds.dtype.kind == "O" or h5py.check_string_dtype(ds.dtype):
            arr = ds.asstr()[()]
        out[key] = np.asarray(arr)
    return out


class ShardFiles:
    """The shards of one dataset folder, each opened on first use, once per process.

    A process forked after handles were opened (a DataLoader or joblib
    worker) opens its own on first use, and pickling (spawn) carries the
    folder only: HDF5 handles never cross a fork.

    Parameters
    ----------
    root : str or Path
        The dataset folder.

    Examples
    --------
    >>> with ShardFiles("out") as files:  # doctest: +SKIP
    ...     frame = files.read("shard-00000.h5", "blur", (0, 0))  # sample row 0, frame 0
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._files: dict[str, Shard] = {}
        self._pid: int | None = None

    def open(self, file: str) -> "Shard":
        """The open shard ``file`` (a name from the manifest) of this process."""
        if self._pid != os.getpid():  # handles of the parent are not ours
            self._files, self._pid = {}, os.getpid()
        shard = self._files.get(file)
        if shard is None:
            shard = self._files[file] = open_shard(self.root / file)
        return shard

    def read(self, file: str, name: str, key: tuple = ()) -> np.ndarray:
        """``shard[name][key]`` of shard ``file``; a damaged shard is one line naming it."""
        shard = self.open(file)
        with reading(self.root / file):
            return shard[name][key]

    @property
    def opened(self) -> list[str]:
        """The shards this process has open."""
        return sorted(self._files) if self._pid == os.getpid() else []

    def close(self) -> None:
        """Close the shards this process opened (a later read opens them again)."""
        if self._pid == os.getpid():
            for shard in self._files.values():
                shard.close()
        self._files = {}

    def __getstate__(self) -> dict:
        return {"root": self.root, "_files": {}, "_pid": None}

    def __enter__(self) -> "ShardFiles":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
