"""Read a dataset back: every sample as numpy arrays, in index order.

:class:`Dataset` is a map-style dataset (``len``, ``dataset[i]``, iteration):
a torch ``DataLoader`` takes it as it is (numpy arrays become tensors in the
default collate) when all samples have one frame size; :func:`torch_dataset`
wraps it for training loops that want float CHW tensors. It reads through
:class:`blursynth.dataset.reader.SampleIndex`: shard files are opened lazily,
read-only and without HDF5 locking, once per process, so a dataset object can
be handed to DataLoader worker processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from blursynth.dataset.reader import SampleIndex, SampleRef
from blursynth.errors import BlursynthError


class Dataset:
    """The samples of the dataset in ``path``.

    A map-style view of :class:`~blursynth.dataset.reader.SampleIndex`: item
    ``i`` is the sample of the i-th smallest global index.

    Parameters
    ----------
    path : str or Path
        A dataset folder (``manifest.json`` + shards).

    Attributes
    ----------
    path : Path
    index : SampleIndex
        The reader underneath (references, meta, runs).
    manifest : Manifest
    sources : list of str
        Distinct source ids (clips or panoramas), sorted.

    Notes
    -----
    ``dataset[i]`` is a dict: ``blur`` and ``sharp`` uint8 ``[L, H, W, 3]``
    (RGB), ``latent`` uint8 ``[L, K, H, W, 3]`` when the dataset has latent
    frames, ``blur_<curve>`` (shaped as ``blur``) per further rendition of a
    ``--response`` list, and every ``meta`` field of the sample (``index``, ``source``,
    ``tau``, ...; docs/format.md) as a numpy scalar or array.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.index = SampleIndex(self.path)
        self.manifest = self.index.manifest

    def __len__(self) -> int:
        return len(self.index)

    @property
    def sources(self) -> list[str]:
        return self.index.sources

    def _ref(self, i: int) -> SampleRef:
        n = len(self.index)
        if not -n <= i < n:
            raise IndexError(f"sample {i} of a dataset of {n}")
        return self.index.refs[i]

    def sample_meta(self, i: int) -> dict:
        """The meta fields of sample ``i`` (no frame is read)."""
        return self.index.meta(self._ref(i))

    def __getitem__(self, i: int) -> dict:
        ref = self._ref(i)
        return {**self.index.arrays(ref), **self.index.meta(ref)}

    def __iter__(self) -> Iterator[dict]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        """Close the shard files this process opened."""
        self.index.close()

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
