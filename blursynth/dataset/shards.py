"""The on-disk dataset format: HDF5 shards tied together by ``manifest.json``.

This module owns every file blursynth writes into ``--out``. The layout is a
contract documented in ``docs/format.md``; reference models and checks read it.

A shard is written under a temporary name (``shard-00003.h5.tmp-<pid>``),
flushed, fsync'd and renamed, so a file named ``shard-*.h5`` is always complete.
The manifest is replaced atomically after every finished shard, so a killed run
leaves a dataset from which a re-run resumes.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import h5py
import numpy as np

import blursynth.budget as budget
from blursynth.version import __version__
from blursynth.dataset.atomic import TMP_MARK, atomic_write_bytes, file_sha256, fsync_file, publish, tmp_path
from blursynth.budget import SHARD_PATTERN
from blursynth.errors import BlursynthError
from blursynth.sources import stamps
from blursynth.sources.stamps import Stamp
from blursynth.jsondoc import load_json

__all__ = [
    "COMPRESSIONS", "FRAME_ARRAYS", "MANIFEST", "Manifest", "Sample", "ShardWriter", "atomic_write_bytes",
    "canonical_json", "config_fingerprint", "describe", "file_sha256", "frame_arrays", "is_frame_array",
    "is_own_file", "iter_samples", "open_shard", "read_meta", "rendition_array", "renditions_of", "shard_name",
    "verify", "write_dataset",
]

SCHEMA = "blursynth/1"
# 2: frame chunks carry HDF5's Fletcher-32 checksum. Version 1 (no checksums)
# still reads; see docs/format.md.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
COMPRESSIONS = ("none", "lzf", "gzip")
# Frame arrays written per sample. Each is uint8 [L, H, W, 3] (latent: [L, K, H, W, 3]).
FRAME_ARRAYS = ("blur", "sharp", "latent")
# Further renditions of ``blur`` (``--response gamma,linear``): ``blur_<curve kind>``, shaped as ``blur``.
_RENDITION_PATTERN = re.compile(r"blur_[a-z]+")


def rendition_array(kind: str) -> str:
    """The array of a further rendition encoded with a curve of ``kind``: ``linear`` -> ``blur_linear``."""
    name = f"blur_{kind}"
    if _RENDITION_PATTERN.fullmatch(name) is None:
        raise ValueError(f"not a curve kind: {kind!r}")
    return name


def is_frame_array(name: str) -> bool:
    """Whether ``name`` is a frame array of a shard: ``blur``, ``sharp``, ``latent`` or ``blur_<kind>``."""
    return name in FRAME_ARRAYS or _RENDITION_PATTERN.fullmatch(name) is not None


def frame_arrays(names) -> list[str]:
    """The frame arrays among ``names`` (e.g. an open shard), in the order
    ``blur``, ``blur_<kind>`` (sorted), ``sharp``, ``latent``."""
    def rank(name: str) -> tuple[int, str]:
        if name in FRAME_ARRAYS:  # blur 0, sharp 2, latent 3
            return FRAME_ARRAYS.index(name) + (name != "blur"), ""
        return 1, name  # the renditions, after blur

    return sorted((n for n in names if is_frame_array(n)), key=rank)


def renditions_of(config: dict) -> dict[str, str]:
    """Blurred frame arrays of a dataset made with ``config`` and their response curves.

    ``{"blur": config["response"]}`` for a single curve; with a list of curves
    (``config["responses"]``, see :func:`blursynth.config.resolved_config`) the
    first is ``blur`` and each further one ``blur_<kind>``, in the list's order.
    """
    names = config.get("responses") or [str(config.get("response", "unknown"))]
    out = {"blur": str(names[0])}
    for name in names[1:]:
        out[rendition_array(str(name).partition(":")[0])] = str(name)
    return out


# The names blursynth gives the files it writes into ``--out``, and nothing else:
# a shard, and the temporaries of a shard or of the manifest (``.tmp-<pid>``,
# plus the shard's ``.progress`` count read by the progress bar).
_TEMPORARY_PATTERN = re.compile(
    rf"(?:shard-\d{{5,}}\.h5{re.escape(TMP_MARK)}\d+(?:\.progress)?|{re.escape(MANIFEST)}{re.escape(TMP_MARK)}\d+)")


def shard_name(index: int) -> str:
    """The file name of shard ``index``: ``shard-00003.h5``."""
    return f"shard-{index:05d}.h5"


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file of a (possibly killed) blursynth run.

    Only the exact patterns blursynth writes count (``shard-00003.h5.tmp-812``,
    ``shard-00003.h5.tmp-812.progress``, ``manifest.json.tmp-812``): a user's
    ``notes.tmp-1`` is not one.
    """
    return _TEMPORARY_PATTERN.fullmatch(name) is not None


def is_own_file(name: str) -> bool:
    """Whether ``name`` is a file blursynth writes into ``--out`` (and may delete).

    That is ``manifest.json``, ``shard-NNNNN.h5`` (five or more digits, nothing
    else) and the temporaries of :func:`is_temporary`. ``shard-important.h5``
    is not one.
    """
    return name == MANIFEST or SHARD_PATTERN.fullmatch(name) is not None or is_temporary(name)


@dataclass
class Sample:
    """One rendered sample: frame arrays plus one value per ``meta`` field."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal objects give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def config_fingerprint(kind: str, config: dict) -> str:
    """sha256 of the canonical JSON of ``kind`` and ``config``.

    Parameters
    ----------
    kind : str
        Dataset kind.
    config : dict
        JSON-serializable.

    Returns
    -------
    str
        64 hex digits.
    """
    return hashlib.sha256(canonical_json({"kind": kind, "config": config}).encode()).hexdigest()


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
        :func:`blursynth.dataset.atomic.tmp_path` of it until the commit.
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


# ----------------------------------------------------------------- manifest
@dataclass
class Manifest:
    """``manifest.json``: what a dataset is and which shards hold it (docs/format.md).

    Attributes
    ----------
    kind : str
    config : dict
        The resolved config that determines the content.
    seed : int
    n_samples : int
        Samples planned.
    shard_size : int
    compression : str
    shards : list of dict
        ``{"index", "file", "samples", "sha256"}`` per finished shard (and
        ``"excluded"`` sources, with ``--skip-bad``).
    skipped : list of dict
        Sources left out and why.
    complete : bool
        Whether the run finished.
    version : str
        The blursynth version that wrote it.
    """
    kind: str
    config: dict
    seed: int
    n_samples: int
    shard_size: int
    compression: str
    shards: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)  # per-source notes (a video's frame counts)
    complete: bool = False
    version: str = __version__
    format_version: int = FORMAT_VERSION
    # First sample of each shard when shards are not all ``shard_size`` long
    # (a new shard starts where the frame size changes); None: uniform shards.
    shard_starts: list[int] | None = None

    @property
    def n_shards(self) -> int:
        """Shards the plan is cut into."""
        if self.shard_starts is not None:
            return len(self.shard_starts)
        return -(-self.n_samples // self.shard_size) if self.n_samples else 0

    def shard_of(self, sample: int) -> int:
        """The index of the shard that holds sample ``sample``."""
        if self.shard_starts is None:
            return sample // self.shard_size
        return bisect.bisect_right(self.shard_starts, sample) - 1

    @property
    def fingerprint(self) -> str:
        """sha256 of the kind and :meth:`identity`; recorded in every shard."""
        return config_fingerprint(self.kind, self.identity())

    def identity(self) -> dict:
        """What must match for a re-run to resume instead of refusing."""
        identity = {"config": self.config, "seed": self.seed, "shard_size": self.shard_size,
                    "compression": self.compression, "n_samples": self.n_samples}
        if self.shard_starts is not None:
            identity["shard_starts"] = self.shard_starts
        return identity

    def to_json(self) -> dict:
        """The JSON object written to ``manifest.json``."""
        layout = {} if self.shard_starts is None else {"shard_starts": self.shard_starts}
        return {
            "format": SCHEMA, "format_version": FORMAT_VERSION, "kind": self.kind,
            "blursynth_version": self.version, "seed": self.seed, "config": self.config,
            "fingerprint": self.fingerprint, "n_samples": self.n_samples,
            "shard_size": self.shard_size, "compression": self.compression,
            "n_shards": self.n_shards, **layout, "complete": self.complete,
            "samples_written": sum(s["samples"] for s in self.shards),
            "shards": sorted(self.shards, key=lambda s: s["index"]), "skipped": self.skipped,
            "sources": self.sources,
        }

    def save(self, out: Path) -> None:
        """Replace ``out/manifest.json`` atomically (:func:`blursynth.dataset.atomic.atomic_write_bytes`)."""
        atomic_write_bytes(Path(out) / MANIFEST, (json.dumps(self.to_json(), indent=1) + "\n").encode())

    @classmethod
    def load(cls, out: Path) -> "Manifest":
        """Read and check ``out/manifest.json``.

        This is the one place where blursynth reads shard names: every entry's
        ``file`` must be a plain name in the shard pattern (``shard-00003.h5``),
        so that a reader (``verify``, ``info``, ``preview``, training,
        evaluation) only ever opens files inside ``out``.

        Raises
        ------
        BlursynthError
            No manifest, one that is not a regular file or is over its size cap,
            an unreadable one (bad JSON, nested too deep, a number that is not
            finite), another format, a shard name that
            is not a plain ``shard-NNNNN.h5``, or a field of the wrong type.
        """
        path = Path(out) / MANIFEST
        # A regular file within the manifest cap, depth-limited, finite numbers (blursynth.jsondoc).
        data = load_json(path, "manifest", missing=f"{out}: not a blursynth dataset (no {MANIFEST})")
        if not isinstance(data, dict) or data.get("format") != SCHEMA:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise BlursynthError(f"{path}: format {found!r} is not {SCHEMA}")
        version = data.get("format_version", 1)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BlursynthError(f"{path}: format_version {version!r} is newer than this blursynth reads "
                                 f"({FORMAT_VERSION}); upgrade blursynth")

        def field_of(key, types, check=lambda v: True, default=None, required=True):
            if key not in data:
                if required:
                    raise BlursynthError(f"{path}: the manifest has no {key!r}")
                return default
            value = data[key]
            if not isinstance(value, types) or (isinstance(value, bool) and types is not bool) \
                    or not check(value):
                raise BlursynthError(f"{path}: {key!r} has a bad value {_short(value)}")
            return value

        kind = field_of("kind", str)
        config = field_of("config", dict)
        seed = field_of("seed", int)
        n_samples = field_of("n_samples", int, lambda v: v >= 0)
        shard_size = field_of("shard_size", int, lambda v: v >= 1)
        compression = field_of("compression", str)
        complete = field_of("complete", bool)
        skipped = field_of("skipped", list, default=[], required=False)
        sources = field_of("sources", list, default=[], required=False)
        starts = field_of("shard_starts", list, required=False,
                          check=lambda v: all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v))
        shards = [_checked_entry(path, e) for e in field_of("shards", list)]
        return cls(kind=kind, config=config, seed=seed, n_samples=n_samples, shard_size=shard_size,
                   compression=compression, shards=shards, skipped=skipped, sources=sources, complete=complete,
                   version=str(data.get("blursynth_version", "?")), format_version=version, shard_starts=starts)

    def shard_path(self, out: Path, entry: dict) -> Path:
        """The path of a shard entry of this manifest (its name was checked by :meth:`load`)."""
        return Path(out) / entry["file"]


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


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:28] + "..." + text[-29:]


def _checked_entry(path: Path, entry) -> dict:
    """A manifest's shard entry, refused unless its names and numbers are well-formed."""
    if not isinstance(entry, dict):
        raise BlursynthError(f"{path}: a shard entry is not an object ({_short(entry)})")
    name = entry.get("file")
    if not isinstance(name, str) or SHARD_PATTERN.fullmatch(name) is None:
        raise BlursynthError(f"{path}: shard file name {_short(name)} is not a plain shard-NNNNN.h5 name "
                             "inside the dataset folder; refusing to read it")
    for key in ("index", "samples"):
        value = entry.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BlursynthError(f"{path}: {name}: {key!r} has a bad value {_short(value)}")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or re.fullmatch(r"[0-9a-f]{64}", digest) is None:
        raise BlursynthError(f"{path}: {name}: 'sha256' has a bad value {_short(digest)}")
    return entry


# ------------------------------------------------------------------ reading
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


def iter_samples(out: Path) -> Iterator[Sample]:
    """Every sample of a dataset in index order (for tests, tools and small data)."""
    manifest = Manifest.load(out)
    for entry in sorted(manifest.shards, key=lambda s: s["index"]):
        path = manifest.shard_path(out, entry)
        with open_shard(path) as f:
            with reading(path):
                meta = read_meta(f)
                names = frame_arrays(f)
                count = int(f.attrs["samples"])
            for i in range(count):
                with reading(path):
                    sample = Sample({n: f[n][i] for n in names}, {k: v[i] for k, v in meta.items()})
                yield sample


def describe(out: Path) -> dict:
    """A summary of a dataset, as a whole and per source (the ``info`` command).

    Parameters
    ----------
    out : Path
        The dataset folder.

    Returns
    -------
    dict
        ``kind``, ``complete``, ``samples`` (written), ``planned``, ``shards``,
        ``skipped`` (count), ``sample_shape`` (per frame array, from the first
        shard), ``frame_sizes`` (``"WxH"`` -> samples), ``bytes`` (shard files),
        ``seed``, ``config`` and ``sources``: per source id, its ``samples``,
        ``frame_sizes``, ``bytes`` (its share of each shard, by sample count:
        frames of one shard all have one size) and, for highspeed data,
        ``tau_T`` (``"tau/T"`` -> samples). JSON-serializable.
    """
    manifest = Manifest.load(out)
    shapes, sizes, sources, total_bytes = {}, {}, {}, 0
    for entry in sorted(manifest.shards, key=lambda s: s["index"]):
        path = manifest.shard_path(out, entry)
        try:
            shard_bytes = path.stat().st_size
        except OSError:
            raise BlursynthError(f"{path}: missing shard; re-run the command that made the dataset") from None
        total_bytes += shard_bytes
        with open_shard(path) as f, reading(path):
            if not shapes:
                shapes = {name: list(f[name].shape[1:]) for name in frame_arrays(f)}
            n = int(f.attrs["samples"])
            if not n:
                continue
            size = f"{f['blur'].shape[3]}x{f['blur'].shape[2]}"
            meta = read_meta(f)
        sizes[size] = sizes.get(size, 0) + n
        for row in range(n):
            info = sources.setdefault(str(meta["source"][row]), {"samples": 0, "frame_sizes": {}, "bytes": 0})
            info["samples"] += 1
            info["frame_sizes"][size] = info["frame_sizes"].get(size, 0) + 1
            info["bytes"] += shard_bytes / n
            if "tau" in meta and "T" in meta:
                key = f"{int(meta['tau'][row])}/{int(meta['T'][row])}"
                hist = info.setdefault("tau_T", {})
                hist[key] = hist.get(key, 0) + 1
    for info in sources.values():
        info["bytes"] = int(round(info["bytes"]))
    return {
        "kind": manifest.kind, "complete": manifest.complete,
        "samples": sum(s["samples"] for s in manifest.shards), "planned": manifest.n_samples,
        "shards": len(manifest.shards), "skipped": len(manifest.skipped), "sample_shape": shapes,
        "frame_sizes": sizes, "bytes": total_bytes, "seed": manifest.seed, "config": manifest.config,
        "sources": dict(sorted(sources.items())),
    }


def verify(out: Path, sources: bool = False) -> list[str]:
    """Check every shard against the manifest (and with ``sources``, its source files).

    Parameters
    ----------
    out : Path
        The dataset folder.
    sources : bool
        Also check that every source file a shard records (``source_files``,
        :mod:`blursynth.sources.stamps`) still has the size and modification
        time it had when the shard was made (``verify --sources``).

    Returns
    -------
    list of str
        One line per problem, naming the shard: an incomplete run, a missing,
        modified (sha256) or unreadable shard, a rendition the config records
        (``blur_<kind>``) missing from a shard, or sample counts that differ
        between the manifest and the shard (every frame array, renditions
        included); with ``sources``, a source file that changed or is gone
        (once per file), or a shard that records none; empty when the dataset
        is fine.
    """
    manifest = Manifest.load(out)
    problems = []
    if not manifest.complete:
        problems.append("the dataset is incomplete (re-run the same command to resume)")
    seen, checked = set(), set()  # shard indices; source files already checked
    for entry in manifest.shards:
        name, path = entry["file"], manifest.shard_path(out, entry)
        if entry["index"] in seen or entry["index"] >= max(manifest.n_shards, 1):
            problems.append(f"{name}: shard index {entry['index']} is repeated or beyond the "
                            f"{manifest.n_shards} shards planned")
        seen.add(entry["index"])
        if not path.exists():
            problems.append(f"{name}: missing")
            continue
        if file_sha256(path) != entry["sha256"]:
            problems.append(f"{name}: sha256 mismatch (corrupted or modified)")
            continue  # one line per damaged shard; what else is wrong inside it does not matter
        try:
            counts = _shard_counts(path)
        except BlursynthError as exc:
            problems.append(str(exc).replace(f"{path}: ", f"{name}: ", 1))
            continue
        missing = [array for array in renditions_of(manifest.config) if array not in counts]
        if missing and entry["samples"]:
            problems.append(f"{name}: no {missing[0]} array, though the config records its response curve")
            continue
        if set(counts.values()) != {entry["samples"]}:
            values = set(counts.values())
            found = str(values.pop()) if len(values) == 1 else \
                ", ".join(f"{k}: {v}" for k, v in counts.items() if v != entry["samples"])
            problems.append(f"{name}: the manifest says {entry['samples']} samples, the shard holds {found}")
            continue
        if sources:
            problems.extend(_source_problems(path, name, checked))
    written = sum(e["samples"] for e in manifest.shards)
    if written > manifest.n_samples or (manifest.complete and not manifest.skipped
                                        and written != manifest.n_samples):
        problems.append(f"the shards hold {written} samples, the manifest plans {manifest.n_samples}")
    return problems


def _source_problems(path: Path, name: str, checked: set[str]) -> list[str]:
    """One line per source file of shard ``path`` that changed since it was made
    (files in ``checked`` are skipped, and the ones seen here added)."""
    try:
        recorded = recorded_sources(path)
    except (BlursynthError, ValueError) as exc:
        return [f"{name}: unreadable record of source files ({exc})".replace(f"{path}: ", "", 1)]
    if recorded is None:
        return [f"{name}: records no source files (made by an older blursynth); its sources cannot be checked"]
    problems = []
    for stamp in recorded:
        if stamp[0] in checked:
            continue
        checked.add(stamp[0])
        what = stamps.change(stamp)
        if what is not None:
            problems.append(f"{name}: source file {stamp[0]} {what} since the shard was made from it")
    return problems


def _shard_counts(path: Path) -> dict[str, int]:
    """Samples a shard says it holds (``attrs``) and the lengths of its arrays."""
    with open_shard(path) as f, reading(path):
        counts = {"attrs": int(f.attrs["samples"])}
        for name in frame_arrays(f):
            counts[name] = len(f[name])
        for key, ds in f["meta"].items():
            counts[f"meta/{key}"] = len(ds)
    return counts
