"""Read a dataset: :class:`SampleIndex`, blursynth's one reader of its samples.

The index reads ``manifest.json`` and each shard's ``meta/`` once, in the
process that builds it, and refers to every sample by a small frozen
:class:`SampleRef` (shard file, row, global index, source). Frames are read by
reference, through shard handles opened lazily once per process
(:class:`blursynth.dataset.shard.ShardFiles`), so an index can be handed to
DataLoader or joblib workers. Every consumer reads through it: export, report,
measures, selections, preview, :class:`blursynth.dataset.Dataset`, and the
reference models' training and evaluation.

:meth:`SampleIndex.runs` is the one definition of *runs of consecutive
exposures* (docs/format.md).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from blursynth.dataset.format import Sample, frame_arrays
from blursynth.dataset.manifest import Manifest
from blursynth.dataset.shard import ShardFiles, damaged, open_shard, read_meta, reading
from blursynth.errors import BlursynthError

__all__ = ["SampleIndex", "SampleRef", "ShardInfo", "iter_samples"]


@dataclass(frozen=True)
class SampleRef:
    """Where one sample lives, and where it sits in its run of consecutive exposures.

    Attributes
    ----------
    file : str
        Shard file name (``shard-00003.h5``).
    row : int
        Row of the sample in the shard's arrays.
    index : int
        Global sample index (``meta/index``).
    source : str
        Source id (``meta/source``).
    seq_len : int
        L, frames of the sample (0 when its shard has no ``blur`` array).
    run : int
        Which of :meth:`SampleIndex.runs` (of the whole dataset) holds the sample.
    offset : int
        Frame of that run where the sample's first frame is.
    """

    file: str
    row: int
    index: int
    source: str
    seq_len: int = 0
    run: int = -1
    offset: int = 0


@dataclass
class ShardInfo:
    """What the index knows of one shard: its sample count, frame shapes and meta.

    Attributes
    ----------
    file : str
    samples : int
    shapes : dict of str to tuple of int
        Shape of one sample per frame array (``blur``: ``(L, H, W, 3)``,
        ``latent``: ``(L, K, H, W, 3)``), in :func:`~blursynth.dataset.format.frame_arrays` order.
    meta : dict of str to ndarray
        One array per ``meta`` field, one value per row (strings decoded).
    """

    file: str
    samples: int
    shapes: dict[str, tuple[int, ...]]
    meta: dict[str, np.ndarray]


class SampleIndex:
    """The samples of the dataset in ``root``: references, meta, frames and runs.

    Parameters
    ----------
    root : str or Path
        A dataset folder (``manifest.json`` + shards).

    Attributes
    ----------
    root : Path
    manifest : Manifest
    shards : dict of str to ShardInfo
        Every shard of the manifest, in shard order.
    refs : list of SampleRef
        Every sample, in global index order; ``run`` and ``offset`` place it
        in :meth:`runs`.
    files : ShardFiles
        The lazily opened shard handles of this process.

    Raises
    ------
    BlursynthError
        A missing or bad manifest, a missing or damaged shard, or a shard
        whose samples have no ``meta/source`` (one line naming the file).

    Examples
    --------
    >>> with SampleIndex("out") as index:  # doctest: +SKIP
    ...     ref = index.refs[0]
    ...     index.meta(ref)["tau"], index.read(ref, "blur").shape
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifest = Manifest.load(self.root)
        self.shards: dict[str, ShardInfo] = {}
        refs: list[SampleRef] = []
        for entry in sorted(self.manifest.shards, key=lambda s: s["index"]):
            info = self._read_shard(entry["file"])
            self.shards[info.file] = info
            meta, n = info.meta, info.samples
            # Without meta/index, a sample's index is its position in the dataset.
            index = meta.get("index", np.arange(len(refs), len(refs) + n))
            seq_len = info.shapes["blur"][0] if "blur" in info.shapes else 0
            refs.extend(SampleRef(info.file, row, int(index[row]), str(meta["source"][row]), seq_len)
                        for row in range(n))
        refs.sort(key=lambda ref: ref.index)
        runs = self._group(refs)
        placed = {}
        for r, run in enumerate(runs):
            offset = 0
            for k, ref in enumerate(run):
                run[k] = placed[ref.file, ref.row] = replace(ref, run=r, offset=offset)
                offset += ref.seq_len
        self.refs = [placed[ref.file, ref.row] for ref in refs]
        self._runs = runs
        self.files = ShardFiles(self.root)

    def _read_shard(self, file: str) -> ShardInfo:
        """Sample count, frame shapes and meta of shard ``file``, checked to agree."""
        path = self.root / file
        with open_shard(path) as f, reading(path):
            n = int(f.attrs["samples"])
            shapes = {name: tuple(int(v) for v in f[name].shape[1:]) for name in frame_arrays(f)}
            meta = read_meta(f)
        for key, values in meta.items():
            if len(values) != n:
                raise damaged(path, f"meta/{key} holds {len(values)} values for {n} samples")
        if n and "source" not in meta:
            raise BlursynthError(f"{path}: meta/source is missing")
        return ShardInfo(file, n, shapes, meta)

    # ------------------------------------------------------------ the index
    def __len__(self) -> int:
        return len(self.refs)

    @property
    def sources(self) -> list[str]:
        """Distinct source ids, sorted."""
        return sorted({ref.source for ref in self.refs})

    def select(self, sources: Iterable[str] | None) -> list[SampleRef]:
        """The samples whose source is in ``sources`` (every sample for ``None``), in index order."""
        if sources is None:
            return list(self.refs)
        keep = set(sources)
        return [ref for ref in self.refs if ref.source in keep]

    def require(self, *arrays: str) -> None:
        """Refuse a dataset with a shard of samples that lacks one of ``arrays`` (one line naming it)."""
        for info in self.shards.values():
            if info.samples and not set(arrays) <= set(info.shapes):
                raise BlursynthError(f"{self.root / info.file}: no {'/'.join(arrays)} frames")

    def meta(self, ref: SampleRef) -> dict:
        """The meta fields of sample ``ref`` (numpy scalars or arrays; no frame is read)."""
        return {key: values[ref.row] for key, values in self.shards[ref.file].meta.items()}

    # ------------------------------------------------------------ the frames
    def read(self, ref: SampleRef, name: str, key: tuple = ()) -> np.ndarray:
        """Frame array ``name`` of sample ``ref``, or the part ``key`` of it (indices after the row).

        ``index.read(ref, "blur", (slice(2, 4), ys, xs))`` reads frames 2 and 3
        of the sample, cropped; only the chunks it touches are decompressed.
        """
        return self.files.read(ref.file, name, (ref.row, *key))

    def arrays(self, ref: SampleRef) -> dict[str, np.ndarray]:
        """Every frame array of sample ``ref`` (``blur``, ``blur_<curve>``, ``sharp``, ``latent``)."""
        return {name: self.read(ref, name) for name in self.shards[ref.file].shapes}

    def close(self) -> None:
        """Close the shards this process opened."""
        self.files.close()

    def __enter__(self) -> "SampleIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ the runs
    def runs(self, refs: Iterable[SampleRef] | None = None) -> list[list[SampleRef]]:
        """Samples chained into runs of consecutive exposures: blursynth's one definition.

        Two samples are consecutive when they come from the same source and
        the same draw (``meta`` ``repeat``, ``tau`` and ``T`` equal; a field
        the dataset does not record counts as equal) and the second starts
        where the first ends: its ``start`` is the first's plus ``L·T``
        (L exposures of period T, docs/highspeed.md). A sample without a
        ``start`` and ``T`` (a panorama sample, a pair) is a run of its own.

        Parameters
        ----------
        refs : iterable of SampleRef, optional
            Chain only these samples (a selection): a sample left out breaks
            its run in two. Default: every sample (the runs that ``run`` and
            ``offset`` of :attr:`refs` refer to).

        Returns
        -------
        list of list of SampleRef
            Each run in frame order; the runs in the order of their first
            sample's index.
        """
        if refs is None:
            return [list(run) for run in self._runs]
        return self._group(list(refs))

    def _group(self, refs: list[SampleRef]) -> list[list[SampleRef]]:
        groups: dict[tuple, list[tuple[int, SampleRef]]] = defaultdict(list)
        runs = []
        for ref in sorted(refs, key=lambda ref: ref.index):
            place = self._placement(ref)
            if place is None:
                runs.append([ref])
            else:
                draw, start = place
                groups[draw].append((start, ref))
        for draw, members in groups.items():
            period = draw[-1]
            members.sort(key=lambda member: (member[0], member[1].index))
            run = [members[0]]
            for start, ref in members[1:]:
                last_start, last = run[-1]
                if start == last_start + last.seq_len * period:
                    run.append((start, ref))
                else:
                    runs.append([r for _, r in run])
                    run = [(start, ref)]
            runs.append([r for _, r in run])
        runs.sort(key=lambda run: run[0].index)
        return runs

    def _placement(self, ref: SampleRef) -> tuple[tuple, int] | None:
        """``((source, repeat, tau, T), start)`` of a sample that the meta places in a source, else None."""
        meta = self.shards[ref.file].meta
        if ref.seq_len < 1 or "start" not in meta or "T" not in meta:
            return None
        values = []
        for key in ("repeat", "tau", "T", "start"):
            value = meta[key][ref.row] if key in meta else 0
            if np.ndim(value) != 0:  # a per-frame field is no placement
                return None
            values.append(int(value))
        repeat, tau, period, start = values
        return (ref.source, repeat, tau, period), start


def iter_samples(out: str | Path) -> Iterator[Sample]:
    """Every sample of a dataset in index order (for tests, tools and small data)."""
    with SampleIndex(out) as index:
        for ref in index.refs:
            yield Sample(index.arrays(ref), index.meta(ref))
