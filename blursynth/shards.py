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
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from blursynth import __version__
from blursynth.atomic import TMP_MARK, atomic_write_bytes, file_sha256, fsync_file, publish, tmp_path
from blursynth.errors import BlursynthError

__all__ = [
    "COMPRESSIONS", "FRAME_ARRAYS", "MANIFEST", "Manifest", "Sample", "ShardWriter", "atomic_write_bytes",
    "canonical_json", "config_fingerprint", "describe", "file_sha256", "is_own_file", "iter_samples", "open_shard",
    "read_meta", "shard_name", "verify",
]

SCHEMA = "blursynth/1"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
COMPRESSIONS = ("none", "lzf", "gzip")
# Frame arrays written per sample. Each is uint8 [L, H, W, 3] (latent: [L, K, H, W, 3]).
FRAME_ARRAYS = ("blur", "sharp", "latent")


def shard_name(index: int) -> str:
    """The file name of shard ``index``: ``shard-00003.h5``."""
    return f"shard-{index:05d}.h5"


def is_own_file(name: str) -> bool:
    """Whether ``name`` is a file this module creates in ``--out`` (and may delete with ``--overwrite``)."""
    return name == MANIFEST or (name.startswith("shard-") and (name.endswith(".h5") or f".h5{TMP_MARK}" in name)) \
        or name.startswith(MANIFEST + TMP_MARK)


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
        :func:`blursynth.atomic.tmp_path` of it until the commit.
    kind, config, fingerprint, shard_index
        Recorded in the file's attributes (see docs/format.md).
    capacity : int
        Most samples the shard will hold.
    compression : {"none", "lzf", "gzip"}
        HDF5 filter for the frame arrays.
    """

    def __init__(self, path: Path, *, kind: str, config: dict, fingerprint: str, shard_index: int,
                 capacity: int, compression: str = "none"):
        if compression not in COMPRESSIONS:
            raise BlursynthError(f"--compression {compression}: expected one of {', '.join(COMPRESSIONS)}")
        self.path = Path(path)
        self.tmp = tmp_path(self.path)
        self.capacity = capacity
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
        )

    def append(self, sample: Sample) -> None:
        """Add one sample: its frame arrays (uint8) and one value per meta field."""
        if self.count >= self.capacity:
            raise RuntimeError("shard is full")
        for name, frames in sample.arrays.items():
            if name not in FRAME_ARRAYS:
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
            for name in FRAME_ARRAYS:
                if name in self._file and self.count < self.capacity:
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
    complete: bool = False
    version: str = __version__
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
        }

    def save(self, out: Path) -> None:
        """Replace ``out/manifest.json`` atomically (:func:`blursynth.atomic.atomic_write_bytes`)."""
        atomic_write_bytes(Path(out) / MANIFEST, (json.dumps(self.to_json(), indent=1) + "\n").encode())

    @classmethod
    def load(cls, out: Path) -> "Manifest":
        """Read ``out/manifest.json``.

        Raises
        ------
        BlursynthError
            No manifest, an unreadable one, or another format.
        """
        path = Path(out) / MANIFEST
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise BlursynthError(f"{out}: not a blursynth dataset (no {MANIFEST})") from None
        except (OSError, ValueError) as exc:
            raise BlursynthError(f"{path}: unreadable manifest ({exc})") from None
        if data.get("format") != SCHEMA:
            raise BlursynthError(f"{path}: format {data.get('format')!r} is not {SCHEMA}")
        return cls(kind=data["kind"], config=data["config"], seed=data["seed"],
                   n_samples=data["n_samples"], shard_size=data["shard_size"],
                   compression=data["compression"], shards=data["shards"],
                   skipped=data.get("skipped", []), complete=data["complete"],
                   version=data.get("blursynth_version", "?"), shard_starts=data.get("shard_starts"))


# ------------------------------------------------------------------ reading
def open_shard(path: Path) -> h5py.File:
    """Open a shard read-only, without HDF5 file locking (shards are immutable)."""
    return h5py.File(path, "r", locking=False)


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
        with open_shard(Path(out) / entry["file"]) as f:
            meta = read_meta(f)
            names = [n for n in FRAME_ARRAYS if n in f]
            for i in range(f.attrs["samples"]):
                yield Sample({n: f[n][i] for n in names}, {k: v[i] for k, v in meta.items()})


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
        path = Path(out) / entry["file"]
        shard_bytes = path.stat().st_size
        total_bytes += shard_bytes
        with open_shard(path) as f:
            if not shapes:
                shapes = {name: list(f[name].shape[1:]) for name in FRAME_ARRAYS if name in f}
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


def verify(out: Path) -> list[str]:
    """Check every shard against the manifest.

    Parameters
    ----------
    out : Path
        The dataset folder.

    Returns
    -------
    list of str
        One line per problem (an incomplete run, a missing or modified shard);
        empty when the dataset is fine.
    """
    manifest = Manifest.load(out)
    problems = []
    if not manifest.complete:
        problems.append("the dataset is incomplete (re-run the same command to resume)")
    for entry in manifest.shards:
        path = Path(out) / entry["file"]
        if not path.exists():
            problems.append(f"{entry['file']}: missing")
        elif file_sha256(path) != entry["sha256"]:
            problems.append(f"{entry['file']}: sha256 mismatch (corrupted or modified)")
    return problems
