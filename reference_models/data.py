"""PyTorch datasets over blursynth shards.

Three kinds of sample, one class each:

* :class:`VideoClipDataset` — a window of consecutive blurred frames with their
  sharp frames (STRCNN+DTB, the attention model);
* :class:`LatentDataset` — one blurred frame with its K latent frames (Argaw et al.);
* :class:`PairDataset` — one blurred frame with its sharp frame.

What a dataset holds is read once, in the process that builds the dataset, from
``manifest.json`` and each shard's ``meta/`` (:class:`ShardIndex`); no HDF5 handle
is kept. Frame data is read lazily: each process (each DataLoader worker) opens
the shards it needs on first use, read-only and without HDF5 file locking, so
that handles never cross a fork and read-only shards on shared file systems work.

Augmentation (random crop at the same place in every frame of a sample, flips)
draws from ``numpy.random.default_rng([seed, draw])``, where ``draw`` is the
position of the item in the training stream (:class:`StreamSampler`). The data a
training step sees therefore depends on the seed and the step only — not on the
number of workers — and a resumed run sees exactly what the killed one would have.
"""

from __future__ import annotations

import os

# Shards are immutable once written: no locking, so that read-only copies on
# shared file systems open. Must be set before the HDF5 library opens a file.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Iterable, Iterator, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Dataset, Sampler  # noqa: E402

from blursynth.errors import BlursynthError  # noqa: E402
from blursynth.shards import Manifest, open_shard, read_meta  # noqa: E402


@dataclass(frozen=True)
class SampleRef:
    """Where one sample lives: shard file, row in it, global index and source."""

    file: str
    row: int
    index: int
    source: str


class ShardIndex:
    """Samples, sources and frame shapes of a dataset, read once (no open handles).

    Attributes
    ----------
    root : Path
    manifest : Manifest
    refs : list of SampleRef, in global index order.
    seq_len : L, frames per sample.
    height, width : frame size.
    n_latent : K latent frames per blurred frame (0 if the dataset has none).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifest = Manifest.load(self.root)
        refs: list[SampleRef] = []
        shape = None
        n_latent = 0
        for entry in sorted(self.manifest.shards, key=lambda s: s["index"]):
            path = self.root / entry["file"]
            try:
                with open_shard(path) as f:
                    meta = read_meta(f)
                    if "blur" not in f or "sharp" not in f:
                        raise BlursynthError(f"{path}: no blur/sharp frames")
                    if shape is None:
                        shape = f["blur"].shape[1:]
                        n_latent = f["latent"].shape[2] if "latent" in f else 0
                    n = int(f.attrs["samples"])
            except (OSError, KeyError) as exc:
                raise BlursynthError(f"{path}: cannot read the shard ({exc})") from None
            if "source" not in meta:
                raise BlursynthError(f"{path}: meta/source is missing (needed to split by source)")
            index = meta.get("index", np.arange(len(refs), len(refs) + n))
            refs.extend(SampleRef(entry["file"], row, int(index[row]), str(meta["source"][row]))
                        for row in range(n))
        if not refs:
            raise BlursynthError(f"{self.root}: the dataset holds no samples")
        self.refs = sorted(refs, key=lambda r: r.index)
        self.seq_len, self.height, self.width = int(shape[0]), int(shape[1]), int(shape[2])
        self.n_latent = int(n_latent)

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def sources(self) -> list[str]:
        """Distinct sources, sorted."""
        return sorted({r.source for r in self.refs})

    def select(self, sources: Iterable[str] | None) -> list[SampleRef]:
        """The samples whose source is in ``sources`` (all samples for ``None``)."""
        if sources is None:
            return list(self.refs)
        keep = set(sources)
        return [r for r in self.refs if r.source in keep]


class _ShardDataset(Dataset):
    """Lazy per-process shard handles, crops and flips shared by the three datasets.

    ``dataset[i]`` gives item ``i`` without augmentation (a centre crop if
    ``patch`` is set, else whole frames); ``dataset[(i, draw)]`` gives it with
    the augmentation of stream position ``draw`` when ``augment`` is on.
    """

    def __init__(self, index: ShardIndex, refs: Sequence[SampleRef] | None = None, *,
                 patch: int | None = None, augment: bool = False, flip: bool = True, seed: int = 0):
        self.index = index
        self.refs = list(index.refs if refs is None else refs)
        if not self.refs:
            raise BlursynthError(f"{index.root}: no samples selected (check the split)")
        if patch is not None:
            if patch < 1:
                raise ValueError(f"patch must be positive, got {patch}")
            if patch > min(index.height, index.width):
                raise BlursynthError(f"--patch {patch} is larger than the frames "
                                     f"({index.width}x{index.height}) of {index.root}")
        self.patch = patch
        self.augment = augment
        self.flip = flip
        self.seed = seed
        self._pid: int | None = None
        self._files: dict = {}

    # Handles are per process: a worker forked from a process that had files
    # open must not reuse them, and pickling (spawn) must not carry them.
    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"] = {}
        state["_pid"] = None
        return state

    def _file(self, name: str):
        if self._pid != os.getpid():
            self._files = {}
            self._pid = os.getpid()
        f = self._files.get(name)
        if f is None:
            f = self._files[name] = open_shard(self.index.root / name)
        return f

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files = {}

    def _window(self, rng: np.random.Generator | None) -> tuple[slice, slice, bool, bool]:
        h, w = self.index.height, self.index.width
        if self.patch is None:
            return slice(0, h), slice(0, w), False, False
        p = self.patch
        if rng is None:
            y, x = (h - p) // 2, (w - p) // 2
            return slice(y, y + p), slice(x, x + p), False, False
        y = int(rng.integers(0, h - p + 1))
        x = int(rng.integers(0, w - p + 1))
        hflip = bool(rng.integers(2)) if self.flip else False
        vflip = bool(rng.integers(2)) if self.flip else False
        return slice(y, y + p), slice(x, x + p), hflip, vflip

    def _rng(self, key) -> tuple[int, np.random.Generator | None]:
        if isinstance(key, (tuple, list)):
            item, draw = int(key[0]), int(key[1])
            return item, (np.random.default_rng([self.seed, draw]) if self.augment else None)
        return int(key), None

    @staticmethod
    def _frames(arr: np.ndarray, hflip: bool, vflip: bool) -> torch.Tensor:
        """uint8 [..., H, W, 3] -> uint8 tensor [..., 3, H, W], flipped as asked."""
        if hflip:
            arr = arr[..., :, ::-1, :]
        if vflip:
            arr = arr[..., ::-1, :, :]
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(arr, -1, -3)))


class VideoClipDataset(_ShardDataset):
    """Windows of ``clip_len`` consecutive frames: ``{"blur", "sharp"}`` uint8 [T, 3, h, w].

    Every window of every sample is an item (``clip_len=None``: the whole
    sequence, one item per sample). Items also carry ``index`` (the sample's
    global index) and ``start`` (the window's first frame).
    """

    def __init__(self, index: ShardIndex, refs: Sequence[SampleRef] | None = None, *,
                 clip_len: int | None = None, **kwargs):
        super().__init__(index, refs, **kwargs)
        seq = index.seq_len
        if clip_len is None:
            clip_len = seq
        if clip_len < 1:
            raise ValueError(f"clip_len must be positive, got {clip_len}")
        if clip_len > seq:
            raise BlursynthError(f"--clip-len {clip_len} is longer than the {seq}-frame sequences "
                                 f"of {index.root}")
        self.clip_len = clip_len
        self.items = [(k, s) for k in range(len(self.refs)) for s in range(seq - clip_len + 1)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key) -> dict:
        item, rng = self._rng(key)
        k, start = self.items[item]
        ref = self.refs[k]
        ys, xs, hf, vf = self._window(rng)
        f = self._file(ref.file)
        t = slice(start, start + self.clip_len)
        return {"blur": self._frames(f["blur"][ref.row, t, ys, xs], hf, vf),
                "sharp": self._frames(f["sharp"][ref.row, t, ys, xs], hf, vf),
                "index": ref.index, "start": start}


class _FrameDataset(_ShardDataset):
    """One blurred frame of a sample (any position t of a sequence) with its target ``target``."""

    target = ""

    def __init__(self, index: ShardIndex, refs: Sequence[SampleRef] | None = None, **kwargs):
        super().__init__(index, refs, **kwargs)
        self.items = [(k, t) for k in range(len(self.refs)) for t in range(index.seq_len)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key) -> dict:
        item, rng = self._rng(key)
        k, t = self.items[item]
        ref = self.refs[k]
        ys, xs, hf, vf = self._window(rng)
        f = self._file(ref.file)
        target = f[self.target]
        extra = (slice(None),) * (target.ndim - 5)  # the K axis of latent frames
        return {"blur": self._frames(f["blur"][ref.row, t, ys, xs], hf, vf),
                self.target: self._frames(target[(ref.row, t, *extra, ys, xs)], hf, vf),
                "index": ref.index, "start": t}


class LatentDataset(_FrameDataset):
    """One blurred frame and its K latent frames: ``blur`` [3, h, w], ``latent`` [K, 3, h, w] (uint8)."""

    target = "latent"

    def __init__(self, index: ShardIndex, refs: Sequence[SampleRef] | None = None, **kwargs):
        if index.n_latent == 0:
            raise BlursynthError(f"{index.root}: the dataset has no latent frames "
                                 "(make it with latent frames kept)")
        super().__init__(index, refs, **kwargs)


class PairDataset(_FrameDataset):
    """One blurred frame and its sharp frame: ``blur``, ``sharp`` uint8 [3, h, w]."""

    target = "sharp"


class StreamSampler(Sampler):
    """An endless seeded stream of ``(item, draw)`` keys, from stream position ``start``.

    Position ``p`` of the stream is item ``perm_e[p mod n]`` with ``e = p // n``
    and ``perm_e`` a permutation drawn from ``default_rng([seed, e])``: every
    epoch visits every item once. Rank ``r`` of ``world`` processes takes
    positions ``start + r, start + r + world, …``, so a DDP step over ``world``
    ranks with batch ``b`` sees the same items as one process with batch
    ``world·b``, and resuming at step ``s`` means ``start = s·b·world``.
    """

    def __init__(self, n: int, seed: int, start: int = 0, rank: int = 0, world: int = 1):
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, world), got rank={rank}, world={world}")
        self.n, self.seed, self.start, self.rank, self.world = n, seed, start, rank, world

    def __iter__(self) -> Iterator[tuple[int, int]]:
        p = self.start + self.rank
        epoch, perm = -1, None
        while True:
            e, offset = divmod(p, self.n)
            if e != epoch:
                epoch, perm = e, np.random.default_rng([self.seed, e]).permutation(self.n)
            yield int(perm[offset]), p
            p += self.world


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed numpy and ``random`` from torch's per-worker seed.

    Augmentation does not use these generators (it is keyed by stream position),
    but anything else drawing random numbers in a worker stays reproducible.
    """
    import random
    seed = torch.initial_seed() % 2 ** 32
    np.random.seed(seed)
    random.seed(seed)


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames -> float32 in [0, 1]."""
    return frames.float().div_(255.0)
