"""What a model consumes and is scored on, per kind of sample.

A model class says which kind of sample it learns from in its ``sample_kind``
attribute (``"video"``, ``"latent"`` or ``"pair"``); the training loop and the
evaluation look the kind up here to build the dataset and to line up the
model's output with its target and with the blurry input (the baseline whose
PSNR the output must beat). Adding a model of an existing kind needs nothing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from blursynth.errors import BlursynthError
from reference_models.data import (
    LatentDataset, PairDataset, SampleRef, ShardIndex, VideoClipDataset, to_float,
)

Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Task:
    name: str
    make_dataset: Callable[..., torch.utils.data.Dataset]
    # (model callable, batch on device, training?) -> output, target, blurry baseline;
    # all [B, N, 3, H, W] float in [0, 1] (N frames scored per item).
    outputs: Callable[[Callable, dict, bool], Outputs]


def _video_dataset(index: ShardIndex, refs: Sequence[SampleRef] | None, *, model, clip_len: int | None,
                   patch: int | None, augment: bool, seed: int) -> VideoClipDataset:
    need = getattr(model, "frames", 1)
    if index.seq_len < need:
        raise BlursynthError(
            f"{index.root}: samples are {index.seq_len}-frame sequences; this model needs at least "
            f"{need} consecutive frames (make the dataset with --seq-len {need} or more)")
    if clip_len is not None and clip_len < need:
        raise BlursynthError(f"--clip-len {clip_len}: the model needs at least {need} frames per clip")
    return VideoClipDataset(index, refs, clip_len=clip_len, patch=patch, augment=augment, seed=seed)


def _video_outputs(model: Callable, batch: dict, train: bool) -> Outputs:
    blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
    if train:
        # Only frames with real neighbours are scored in training.
        out = model(blur)
        m = (blur.shape[1] - out.shape[1]) // 2
        t = slice(m, blur.shape[1] - m)
        return out, sharp[:, t], blur[:, t]
    return model(blur, pad=True), sharp, blur


def _latent_dataset(index, refs, *, model, clip_len, patch, augment, seed):
    return LatentDataset(index, refs, patch=patch, augment=augment, seed=seed)


def _latent_outputs(model: Callable, batch: dict, train: bool) -> Outputs:
    blur, latent = to_float(batch["blur"]), to_float(batch["latent"])
    out = model(blur)
    return out, latent, blur.unsqueeze(1).expand_as(latent)


def _pair_dataset(index, refs, *, model, clip_len, patch, augment, seed):
    return PairDataset(index, refs, patch=patch, augment=augment, seed=seed)


def _pair_outputs(model: Callable, batch: dict, train: bool) -> Outputs:
    blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
    return model(blur).unsqueeze(1), sharp.unsqueeze(1), blur.unsqueeze(1)


TASKS = {
    "video": Task("video", _video_dataset, _video_outputs),
    "latent": Task("latent", _latent_dataset, _latent_outputs),
    "pair": Task("pair", _pair_dataset, _pair_outputs),
}


def task_of(model: torch.nn.Module) -> Task:
    """The :class:`Task` of ``model`` (unwrapping DDP / ``torch.compile``)."""
    core = getattr(model, "module", model)
    core = getattr(core, "_orig_mod", core)
    kind = getattr(core, "sample_kind", None)
    if kind not in TASKS:
        raise ValueError(f"model {type(core).__name__} has sample_kind {kind!r}; expected one of {sorted(TASKS)}")
    return TASKS[kind]
