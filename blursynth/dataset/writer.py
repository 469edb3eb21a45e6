"""Write a dataset: one shard at a time, under a temporary name, then renamed.

A shard is written under a temporary name (``shard-00003.h5.tmp-<pid>``),
flushed, fsync'd and renamed, so a file named ``shard-*.h5`` is always complete.
The engine (:mod:`blursynth.run.engine`) replaces the manifest atomically after
every finished shard, so a killed run leaves a dataset from which a re-run
resumes; :func:`write_dataset` writes a dataset of ready samples in one go.
The folder itself (lock, ownership, temporaries) belongs to
:mod:`blursynth.dataset.outdir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import h5py
import numpy as np

import blursynth.budget as budget
from blursynth.atomic import file_sha256, fsync_file, publish, tmp_path
from blursynth.dataset.format import (COMPRESSIONS, FORMAT_VERSION, SCHEMA, Sample, canonical_json, frame_arrays,
                                      is_frame_array, shard_name)
from blursynth.dataset.manifest import Manifest
from blursynth.errors import BlursynthError
from blursynth.sources import stamps
from blursynth.sources.stamps import Stamp
from blursynth.version import __version__

__all__ = ["ShardWriter", "write_dataset"]


def _meta_array(values: list) -> np.ndarray:
    first = values[0]
    if isinstance(first, str):
        return np.array(values, dtype=h5py.string_dtype("utf-8"))
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    raise TypeError(f"meta values of type {arr.dtype} are not supported")


class ShardWriter:
    """Write one shard of up to ``capacity`` samples; ``commit`` makes it visible.

    Use it as a context manager: leaving the ``with`` block normally commits
    the shard (the sha256 is then in :attr:`digest`), leaving it by an exception
    removes the temporary file, and a block that called :meth:`abort` itself
    leaves nothing behind either::

        with ShardWriter(path, kind=..., config=..., fingerprint=..., shard_index=k,
                         capacity=len(samples)) as writer:
            for sample in samples:
                writer.append(sample)
        writer.digest

    Frame datasets get one chunk per frame, so a reader taking one frame (or a
    crop of it) decompresses only that frame.

    Parameters
    ----------
    path : Path
        Final path of the shard (``shard-NNNNN.h5``); the data goes to
        :func:`blursynth.atomic.tmp_path` of it until the commit.
    kind, config, fingerprint, shard_index
        Recorded in the file's attributes (see docs/format.md).
    capacity : int
        Most samples the shard will hold.
    compression : {"none", "lzf", "gzip"}
        HDF5 filter for the frame arrays.
    writers : int
        Shard writers that may write to the same disk at once. Before each
        sample the writer checks that the disk has room for that sample from
        each of them (:func:`blursynth.budget.ensure_room`): HDF5 itself must
        never meet a full disk.
    sources : iterable of Stamp
        Size and modification time of the source files the samples are made
        from (:mod:`blursynth.sources.stamps`), recorded as the string
        dataset ``source_files`` when there are any (``verify --sources`` reads it).
    """

    def __init__(self, path: Path, *, kind: str, config: dict, fingerprint: str, shard_index: int,
                 capacity: int, compression: str = "none", writers: int = 1, sources: Iterable[Stamp] = ()):
        if compression not in COMPRESSIONS:
            raise BlursynthError(f"--compression {compression}: expected one of {', '.join(COMPRESSIONS)}")
        self.path = Path(path)
        self.tmp = tmp_path(self.path)
        self.capacity = capacity
        self.writers = writers  # shard writers sharing the disk (for the free-space check)
        self.compression = None if compression == "none" else compression
        self.count = 0
        self.digest: str | None = None
        self._meta: dict[str, list] = {}
        self._file = h5py.File(self.tmp, "w", libver=("v110", "v110"))
        attrs = self._file.attrs
        attrs["schema"] = SCHEMA
        attrs["format_version"] = FORMAT_VERSION
        attrs["kind"] = kind
        attrs["config"] = canonical_json(config)
        attrs["fingerprint"] = fingerprint
        attrs["shard_index"] = shard_index
        attrs["blursynth_version"] = __version__
        sources = stamps.to_json(sources)
        if sources != "[]":  # a dataset, not an attribute: a ninth attribute moves them all to dense storage
            self._file.create_dataset("source_files", data=sources, dtype=h5py.string_dtype(), track_times=False)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and self._file.id.valid:
            self.commit()
        else:
            self.abort()

    def _dataset(self, name: str, frames: np.ndarray) -> h5py.Dataset:
        if name in self._file:
            ds = self._file[name]
            if ds.shape[1:] != frames.shape:
                raise BlursynthError(
                    f"sample shapes differ inside one dataset ({name}: {ds.shape[1:]} vs {frames.shape}); "
                    "pass --resize so that every sample has the same size"
                )
            return ds
        chunk = (1,) * (frames.ndim - 3) + frames.shape[-3:]
        return self._file.create_dataset(
            name, shape=(self.capacity, *frames.shape), maxshape=(None, *frames.shape),
            dtype=np.uint8, chunks=(1, *chunk), compression=self.compression, track_times=False,
            fletcher32=True,  # every reader then detects a damaged chunk (format version 2)
        )

    def append(self, sample: Sample) -> None:
        """Add one sample: its frame arrays (uint8) and one value per meta field."""
        if self.count >= self.capacity:
            raise RuntimeError("shard is full")
        budget.ensure_room(self.path.parent, sum(a.nbytes for a in sample.arrays.values()), self.writers)
        for name, frames in sample.arrays.items():
            if not is_frame_array(name):
                raise ValueError(f"unknown frame array {name!r}")
            if frames.dtype != np.uint8:
                raise TypeError(f"{name} must be uint8, got {frames.dtype}")
            dataset = self._dataset(name, frames)
            dataset[self.count] = frames
            # HDF5 places a chunk in the file when its cache is flushed, which
            # otherwise happens when the last handle to the dataset closes: flush
            # now so the file's bytes follow the append order, not object lifetimes.
            dataset.id.flush()
        if self._meta and set(sample.meta) != set(self._meta):
            raise ValueError("every sample must carry the same meta fields")
        for key, value in sample.meta.items():
            self._meta.setdefault(key, []).append(value)
        self.count += 1

    def commit(self) -> str:
        """Finish the file, rename it into place and return its sha256."""
        try:
            for name in frame_arrays(self._file):
                if self.count < self.capacity:
                    ds = self._file[name]
                    ds.resize((self.count, *ds.shape[1:]))
            group = self._file.create_group("meta")
            for key, values in sorted(self._meta.items()):
                group.create_dataset(key, data=_meta_array(values), track_times=False)
            self._file.attrs["samples"] = self.count
            self._file.flush()
            self._file.close()
            fsync_file(self.tmp)
            digest = file_sha256(self.tmp)
            publish(self.tmp, self.path)
            self.digest = digest
            return digest
        finally:
            self.abort()

    def abort(self) -> None:
        """Close and remove the temporary file (no-op after ``commit``)."""
        try:
            if self._file.id.valid:
                self._file.close()
        except (OSError, RuntimeError):
            pass  # a full or failing disk can fail the close too; the error that got here matters
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


def write_dataset(out: Path, kind: str, config: dict, sizes: list[int], samples: Iterable[Sample],
                  seed: int = 0) -> Manifest:
    """Write a complete dataset of ready samples into the new folder ``out``: shard k holds the next ``sizes[k]``.

    For datasets that are not rendered by a pipeline (the engine writes those):
    a test set read from folders of image pairs, a doctored copy of a dataset
    in a benchmark. Each shard goes through :class:`ShardWriter` (temporary
    name, checksums, rename) and the manifest is written last, so ``out`` is a
    dataset only once it is complete. ``samples`` is consumed lazily, one
    sample at a time.

    Parameters
    ----------
    out : Path
        A folder that does not exist yet.
    kind, config, seed
        Recorded in the manifest and the shards (the dataset's fingerprint).
    sizes : list of int
        Samples per shard (a shard holds one frame size).
    samples : iterable of Sample
        ``sum(sizes)`` samples in index order.

    Returns
    -------
    Manifest
    """
    out = Path(out)
    out.mkdir(parents=True)
    starts = [sum(sizes[:k]) for k in range(len(sizes))]
    uniform = all(n == sizes[0] for n in sizes[:-1]) and sizes[-1] <= sizes[0]
    manifest = Manifest(kind=kind, config=config, seed=seed, n_samples=sum(sizes), shard_size=max(sizes),
                        compression="none", complete=True, shard_starts=None if uniform else starts)
    stream = iter(samples)
    for k, n in enumerate(sizes):
        with ShardWriter(out / shard_name(k), kind=kind, config=config, fingerprint=manifest.fingerprint,
                         shard_index=k, capacity=n) as writer:
            for _ in range(n):
                writer.append(next(stream))
        manifest.shards.append({"index": k, "file": shard_name(k), "samples": n, "sha256": writer.digest})
    manifest.save(out)
    return manifest
