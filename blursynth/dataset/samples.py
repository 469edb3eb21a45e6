"""Read a dataset back: every sample as numpy arrays, in index order.

:class:`Dataset` is a map-style dataset (``len``, ``dataset[i]``, iteration):
a torch ``DataLoader`` takes it as it is (numpy arrays become tensors in the
default collate) when all samples have one frame size; :func:`torch_dataset`
wraps it for training loops that want float CHW tensors. Shard files are opened
lazily, read-only and without HDF5 locking, once per process, so a dataset
object can be handed to DataLoader worker processes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from blursynth.errors import BlursynthError
from blursynth.dataset.shards import Manifest, frame_arrays, open_shard, read_meta


class Dataset:
    """The samples of the dataset in ``path``.

    Parameters
    ----------
    path : str or Path
        A dataset folder (``manifest.json`` + shards).

    Attributes
    ----------
    path : Path
    manifest : Manifest
    sources : list of str
        Distinct source ids (clips or panoramas), sorted.

    Notes
    -----
    ``dataset[i]`` is a dict: ``blur`` and ``sharp`` uint8 ``[L, H, W, 3]``
    (RGB), ``latent`` uint8 ``[L, K, H, W, 3]`` when the dataset has latent
    frames, ``blur_<kind>`` (shaped as ``blur``) per further rendition of a
    ``--response`` list, and every ``meta`` field of the sample (``index``, ``source``,
    ``tau``, ...; docs/format.md) as a numpy scalar or array.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = Manifest.load(self.path)
        refs, meta = [], {}
        for entry in self.manifest.shards:
            with open_shard(self.path / entry["file"]) as f:
                shard_meta = read_meta(f)
                n = int(f.attrs["samples"])
            meta[entry["file"]] = shard_meta
            index = shard_meta.get("index", np.arange(n))
            refs.extend((int(index[row]), entry["file"], row) for row in range(n))
        refs.sort()
        self._refs = [(file, row) for _, file, row in refs]
        self._meta = meta
        self._files: dict = {}
        self._pid = None

    def __len__(self) -> int:
        return len(self._refs)

    @property
    def sources(self) -> list[str]:
        return sorted({str(s) for m in self._meta.values() for s in m["source"]})

    def _file(self, name: str):
        if self._pid != os.getpid():  # a forked worker opens its own handles
            self._files, self._pid = {}, os.getpid()
        if name not in self._files:
            self._files[name] = open_shard(self.path / name)
        return self._files[name]

    def _ref(self, i: int) -> tuple[str, int]:
        n = len(self._refs)
        if not -n <= i < n:
            raise IndexError(f"sample {i} of a dataset of {n}")
        return self._refs[i]

    def sample_meta(self, i: int) -> dict:
        """The meta fields of sample ``i`` (no frame is read)."""
        file, row = self._ref(i)
        return {key: values[row] for key, values in self._meta[file].items()}

    def __getitem__(self, i: int) -> dict:
        file, row = self._ref(i)
        f = self._file(file)
        sample = {name: f[name][row] for name in frame_arrays(f)}
        sample.update(self.sample_meta(i))
        return sample

    def __iter__(self) -> Iterator[dict]:
        for i in range(len(self)):
            yield self[i]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_files"], state["_pid"] = {}, None
        return state

    def close(self) -> None:
        """Close the shard files this process opened."""
        for f in self._files.values():
            f.close()
        self._files = {}

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_dataset(path: str | Path) -> Dataset:
    """Open the dataset in ``path`` for reading (see :class:`Dataset`).

    Examples
    --------
    >>> for sample in blursynth.open_dataset("highspeed-out"):  # doctest: +SKIP
    ...     sample["blur"].shape, sample["source"]
    """
    if not (Path(path) / "manifest.json").exists():
        raise BlursynthError(f"{path}: not a blursynth dataset (no manifest.json)")
    return Dataset(path)
