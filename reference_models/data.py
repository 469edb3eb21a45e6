"""PyTorch datasets over blursynth shards.

Three kinds of sample, one class each:

* :class:`VideoClipDataset` — a window of consecutive blurred frames with their
  sharp frames (STRCNN+DTB, the attention model);
* :class:`LatentDataset` — one blurred frame with its K latent frames (Argaw et al.);
* :class:`PairDataset` — one blurred frame with its sharp frame.

What a dataset holds is read once, in the process that builds the dataset, by
blursynth's one reader (:class:`blursynth.dataset.SampleIndex`; :class:`ShardIndex`
adds what training needs to know); no HDF5 handle is kept. Frame data is read
lazily through the index: each process (each DataLoader worker) opens the shards
it needs on first use, read-only and without HDF5 file locking
(:class:`blursynth.dataset.ShardFiles`), so that handles never cross a fork and
read-only shards on shared file systems work.

**Exposures across samples.** A highspeed sample is ``L`` consecutive exposures
of one clip under one (τ, T) draw, and the next sample of the same clip and
draw continues where it ends (its ``meta/start`` is ``L·T`` frames later). The
index chains such samples into *runs* (:meth:`blursynth.dataset.SampleIndex.runs`,
the one definition): a ``--seq-len 1`` dataset is still a video of exposures,
and a video model reads windows that cross sample boundaries. Samples without
``start``/``T`` in their meta are runs of their own.

Augmentation (random crop at the same place in every frame of a sample, flips,
and the start of a training window in its run) draws from
``numpy.random.default_rng([seed, draw])``, where ``draw`` is the position of
the item in the training stream (:class:`StreamSampler`). The data a training
step sees therefore depends on the seed and the step only — not on the number
of workers — and a resumed run sees exactly what the killed one would have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from blursynth.errors import BlursynthError
from blursynth.dataset import SampleIndex, SampleRef

__all__ = ["LatentDataset", "PairDataset", "SampleRef", "ShardIndex", "StreamSampler", "VideoClipDataset",
           "seed_worker", "to_float"]


class ShardIndex:
    """What a model trains on: a dataset's :class:`~blursynth.dataset.SampleIndex` and its frame sizes.

    Refuses, in one line naming the file, a dataset that has no samples or a
    shard without ``blur``/``sharp`` frames.

    Attributes
    ----------
    samples : SampleIndex
        The reader: meta, frames by reference, lazily opened shards.
    root : Path
    manifest : Manifest
    refs : list of SampleRef, in global index order (``run`` and ``offset`` place each in ``runs``).
    seq_len : L, frames per sample.
    height, width : frame size; the smallest of the shards when shards differ
        (blursynth writes one frame size per shard, docs/format.md).
    sizes : dict of shard file name to (height, width).
    n_latent : K latent frames per blurred frame (0 if the dataset has none).
    runs : list of list of SampleRef
        ``samples.runs()``: samples chained into runs of consecutive exposures,
        in frame order.
    """

    def __init__(self, root: str | Path):
        self.samples = SampleIndex(root)
        self.samples.require("blur", "sharp")
        self.root, self.manifest, self.refs = self.samples.root, self.samples.manifest, self.samples.refs
        if not self.refs:
            raise BlursynthError(f"{self.root}: the dataset holds no samples")
        shapes = [info.shapes for info in self.samples.shards.values() if "blur" in info.shapes]
        self.seq_len = int(shapes[0]["blur"][0])
        self.n_latent = int(shapes[0]["latent"][1]) if "latent" in shapes[0] else 0
        self.sizes: dict[str, tuple[int, int]] = {
            file: info.shapes["blur"][1:3] for file, info in self.samples.shards.items() if "blur" in info.shapes}
        self.height = min(h for h, _ in self.sizes.values())
        self.width = min(w for _, w in self.sizes.values())
        self.runs = self.samples.runs()

    def __len__(self) -> int:
        return len(self.refs)

    @property
    def sources(self) -> list[str]:
        """Distinct sources, sorted."""
        return self.samples.sources

    def select(self, sources: Iterable[str] | None) -> list[SampleRef]:
        """The samples whose source is in ``sources`` (all samples for ``None``)."""
        return self.samples.select(sources)


class _ShardDataset(Dataset):
    """Reading through the index (its lazy per-process shard handles), crops and flips: shared by the three datasets.

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

    def _part(self, ref: SampleRef, name: str, key: tuple) -> np.ndarray:
        """Part ``key`` of frame array ``name`` of sample ``ref`` (through the index's lazy handles)."""
        return self.index.samples.read(ref, name, key)

    def close(self) -> None:
        """Close the shards this process opened."""
        self.index.samples.close()

    def _window(self, rng: np.random.Generator | None, ref: SampleRef) -> tuple[slice, slice, bool, bool]:
        h, w = self.index.sizes[ref.file]  # each shard has its own frame size
        if rng is None:
            if self.patch is None:
                return slice(0, h), slice(0, w), False, False
            p = self.patch
            y, x = (h - p) // 2, (w - p) // 2
            return slice(y, y + p), slice(x, x + p), False, False
        if self.patch is None:
            ys, xs = slice(0, h), slice(0, w)
        else:
            p = self.patch
            y = int(rng.integers(0, h - p + 1))
            x = int(rng.integers(0, w - p + 1))
            ys, xs = slice(y, y + p), slice(x, x + p)
        hflip = bool(rng.integers(2)) if self.flip else False
        vflip = bool(rng.integers(2)) if self.flip else False
        return ys, xs, hflip, vflip

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
    """Windows of consecutive frames of a run: ``{"blur", "sharp"}`` uint8 [T, 3, h, w].

    One item per selected sample, in two modes:

    * **training** (``clip_len`` given): a window of ``clip_len`` consecutive
      frames of the sample's run. With ``augment`` its start is drawn uniformly
      over the whole run (Kim et al. 2017, Sec. 5.3, train on random 13
      consecutive frames), so the first and last frames of a sample are targets
      too; without, the window is centred on the sample.
    * **evaluation** (``clip_len=None``): the sample's own L frames plus up to
      ``context`` frames of the run on each side, so that a model sees the
      neighbours a real video would give it.

    Items also carry ``index`` (the sample's global index), ``start`` (the
    window's first frame relative to the sample's first frame), and ``first``,
    ``count``: which frames of the window are the sample's own (evaluation
    scores those; a training window is all scored: ``first=0, count=T``).

    Parameters
    ----------
    index, refs : the dataset and the selected samples (``None``: all).
    clip_len : frames per training window; ``None`` for evaluation items.
    context : frames of context on each side of evaluation items.
    min_frames : frames the model needs in a window (2m+1 for DTB).
    patch, augment, flip, seed : as in every dataset here.
    """

    def __init__(self, index: ShardIndex, refs: Sequence[SampleRef] | None = None, *,
                 clip_len: int | None = None, context: int = 0, min_frames: int = 1, **kwargs):
        super().__init__(index, refs, **kwargs)
        L = index.seq_len
        shortest = min(len(index.runs[r.run]) * L for r in self.refs)
        if clip_len is not None and clip_len < 1:
            raise ValueError(f"clip_len must be positive, got {clip_len}")
        if shortest < min_frames:
            raise BlursynthError(
                f"{index.root}: the shortest run of consecutive exposures holds {shortest} frame(s); "
                f"this model needs at least {min_frames} (make the dataset from longer clips, or with "
                f"--seq-len {min_frames} or more)")
        if clip_len is not None and clip_len < min_frames:
            raise BlursynthError(f"--clip-len {clip_len}: the model needs at least {min_frames} frames per clip")
        if clip_len is not None and clip_len > shortest:
            raise BlursynthError(f"--clip-len {clip_len} is longer than the shortest run of consecutive "
                                 f"exposures ({shortest} frames) of {index.root}")
        self.clip_len = clip_len
        self.context = max(0, int(context))

    def __len__(self) -> int:
        return len(self.refs)

    def _span(self, ref: SampleRef, rng: np.random.Generator | None) -> tuple[int, int]:
        """[a, b): the window's frames in the run."""
        L = self.index.seq_len
        total = len(self.index.runs[ref.run]) * L
        if self.clip_len is None:
            return max(0, ref.offset - self.context), min(total, ref.offset + L + self.context)
        if rng is not None:
            a = int(rng.integers(0, total - self.clip_len + 1))
        else:
            a = min(max(ref.offset + L // 2 - self.clip_len // 2, 0), total - self.clip_len)
        return a, a + self.clip_len

    def _read(self, ref: SampleRef, name: str, a: int, b: int, ys: slice, xs: slice) -> np.ndarray:
        """Frames [a, b) of ``ref``'s run, read across its samples."""
        L = self.index.seq_len
        run = self.index.runs[ref.run]
        parts = []
        for part in run[a // L:(b - 1) // L + 1]:
            lo, hi = max(a, part.offset) - part.offset, min(b, part.offset + L) - part.offset
            parts.append(self._part(part, name, (slice(lo, hi), ys, xs)))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def __getitem__(self, key) -> dict:
        item, rng = self._rng(key)
        ref = self.refs[item]
        ys, xs, hf, vf = self._window(rng, ref)
        a, b = self._span(ref, rng)
        if self.clip_len is None:
            first, count = ref.offset - a, self.index.seq_len
        else:
            first, count = 0, b - a
        return {"blur": self._frames(self._read(ref, "blur", a, b, ys, xs), hf, vf),
                "sharp": self._frames(self._read(ref, "sharp", a, b, ys, xs), hf, vf),
                "index": ref.index, "start": a - ref.offset, "first": first, "count": count}


    def run_frames(self, item: int, a: int, b: int) -> dict:
        """Whole frames [a, b) of the run of sample ``item``, clipped to the run (online evaluation).

        Returns
        -------
        dict
            ``blur`` and ``sharp`` uint8 [b' − a', 3, H, W], ``a`` and ``b`` (the
            span read, inside the run), ``offset`` (the sample's first frame in
            the run) and ``total`` (the run's frames).
        """
        ref = self.refs[item]
        total = len(self.index.runs[ref.run]) * self.index.seq_len
        a, b = max(0, a), min(total, b)
        whole = slice(None)
        return {"blur": self._frames(self._read(ref, "blur", a, b, whole, whole), False, False),
                "sharp": self._frames(self._read(ref, "sharp", a, b, whole, whole), False, False),
                "a": a, "b": b, "offset": ref.offset, "total": total}


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
        ys, xs, hf, vf = self._window(rng, ref)
        # the K axis of latent frames ([L, K, H, W, 3] per sample); a shard lacking the
        # target array is one line naming it when read
        shape = self.index.samples.shards[ref.file].shapes.get(self.target, (0,) * 4)
        extra = (slice(None),) * (len(shape) - 4)
        return {"blur": self._frames(self._part(ref, "blur", (t, ys, xs)), hf, vf),
                self.target: self._frames(self._part(ref, self.target, (t, *extra, ys, xs)), hf, vf),
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
