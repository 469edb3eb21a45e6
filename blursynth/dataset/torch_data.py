"""A torch ``Dataset`` over a blursynth dataset (imported only by :func:`blursynth.torch_dataset`)."""

from __future__ import annotations

import numpy as np
import torch

from blursynth.dataset.samples import Dataset, open_dataset
from blursynth.dataset.format import frame_arrays


class TorchDataset(torch.utils.data.Dataset):
    """Samples of a :class:`~blursynth.dataset.Dataset` as float32 CHW tensors in [0, 1].

    Parameters
    ----------
    dataset : Dataset
        The numpy dataset to wrap.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict:
        sample = self.dataset[i]
        item = {"index": int(sample["index"]), "source": str(sample["source"])}
        for name in frame_arrays(sample):
            frames = np.moveaxis(sample[name], -1, -3)  # [..., H, W, 3] -> [..., 3, H, W]
            item[name] = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)
        return item


def torch_dataset(path) -> TorchDataset:
    """A ``torch.utils.data.Dataset`` over the dataset in ``path``: float32 tensors in [0, 1].

    Items are dicts with ``blur`` and ``sharp`` ``[L, 3, H, W]``, ``latent``
    ``[L, K, 3, H, W]`` and ``blur_<curve>`` (further renditions) when present, ``index`` and ``source``; a DataLoader
    batches them when all samples have one frame size.
    """
    return TorchDataset(open_dataset(path))
