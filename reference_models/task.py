"""What a model learns from, how it is trained and how it is scored: :class:`ModelTask`.

Each model class carries an instance of a :class:`ModelTask` subclass as its
class attribute ``task``. The training loop (:mod:`reference_models.train`) and
the evaluation (:mod:`reference_models.evaluate`) ask the task, never the model
name, for

* the dataset that feeds the model (:meth:`ModelTask.dataset`, by ``sample_kind``),
* the training loss and its named terms (:meth:`ModelTask.loss`),
* the learning rate at a step (:meth:`ModelTask.learning_rate`),
* the output, target and blurry input to score (:meth:`ModelTask.outputs`),
  the per-sample alignment of output to target (:meth:`ModelTask.align`) and
  the names of the scored positions (:meth:`ModelTask.position_names`),
* the training presets (:meth:`ModelTask.preset`): ``paper`` (the paper's
  sizes and schedule, :attr:`ModelTask.defaults`) and ``probe`` (a small model
  and schedule measured for the most held-out gain per CPU minute,
  :attr:`ModelTask.probe`), used for every option the user did not give.

So adding a model never edits the training loop. The contract between the loop
and the models is written down in docs/models.md ("Adding a model").
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from reference_models.data import (
    LatentDataset, PairDataset, SampleRef, ShardIndex, VideoClipDataset, to_float,
)

__all__ = ["ModelTask", "Outputs", "PRESETS", "SAMPLE_KINDS", "core_model", "task_of"]

Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
SAMPLE_KINDS = ("video", "latent", "pair")
# ``paper``: the paper's model and schedule (a GPU's work); ``probe``: small and
# short enough to answer "does this data teach?" on two CPU cores (docs/models.md).
PRESETS = ("paper", "probe")


class ModelTask:
    """Training and scoring behaviour of one model family (defaults for a plain model).

    Attributes
    ----------
    sample_kind : str
        ``"video"`` (blurry clip -> sharp clip), ``"latent"`` (one blurry frame
        -> its K latent frames) or ``"pair"`` (one blurry frame -> its sharp
        frame): which dataset class of :mod:`reference_models.data` feeds the model.
    defaults : dict
        :class:`~reference_models.train.TrainConfig` field -> the paper's value,
        used when the user gave neither a flag nor a recipe value (for example
        ``{"batch": 8, "patch": 128, "lr": 1e-4, "clip_len": 13}``): the
        ``paper`` preset.
    probe : dict
        The ``probe`` preset: TrainConfig fields (``steps`` included) and
        ``model_args`` (the smaller model), chosen by measurement on 2 CPU
        cores (docs/models.md, "Presets"). Empty: the paper's settings.
    """

    sample_kind: str = "video"
    defaults: dict = {}
    probe: dict = {}
    #: How the model runs on a video at evaluation: ``"window"`` (each sample with
    #: its neighbouring frames as context, on its own) or ``"online"`` (a recurrent
    #: model whose state carries across the consecutive exposures of a run, as the
    #: model deblurs a video sequentially; its forward takes ``state=`` and
    #: ``return_state=True`` like :meth:`reference_models.dtb.DTBNet.forward`).
    inference: str = "window"

    def preset(self, name: str) -> dict:
        """The fields of preset ``name`` (``paper`` or ``probe``); ``model_args`` among them.

        Raises
        ------
        ValueError
            For a name not in :data:`PRESETS`.
        """
        if name == "paper":
            return dict(self.defaults)
        if name == "probe":
            return {**self.defaults, **self.probe}
        raise ValueError(f"--preset {name}: expected one of {', '.join(PRESETS)}")

    # ------------------------------------------------------------------ data
    def dataset(self, index: ShardIndex, refs: Sequence[SampleRef] | None, *, model: torch.nn.Module,
                clip_len: int | None, patch: int | None, augment: bool, flip: bool,
                seed: int) -> torch.utils.data.Dataset:
        """The dataset of ``refs`` for this model.

        Parameters
        ----------
        index, refs : the dataset and the samples selected from it.
        model : the (unwrapped) model, for attributes such as the frames it needs.
        clip_len : frames per training window (video kind; ``None``: evaluation
            items, one per sample).
        patch : random crop size (``None``: whole frames).
        augment : random crop position and flips from the stream position.
        flip : random horizontal/vertical flips when augmenting.
        seed : augmentation seed.

        Returns
        -------
        A dataset of dicts of uint8 tensors (:mod:`reference_models.data`).
        """
        common = dict(patch=patch, augment=augment, flip=flip, seed=seed)
        if self.sample_kind == "video":
            need = getattr(model, "frames", 1)
            return VideoClipDataset(index, refs, clip_len=clip_len, min_frames=need,
                                    context=0 if clip_len is not None else need // 2, **common)
        if self.sample_kind == "latent":
            return LatentDataset(index, refs, **common)
        if self.sample_kind == "pair":
            return PairDataset(index, refs, **common)
        raise ValueError(f"sample_kind {self.sample_kind!r} is not one of {SAMPLE_KINDS}")

    # ------------------------------------------------------------- training
    def loss(self, model: Callable, batch: dict, config) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss: MSE of :meth:`outputs` against the target (override per paper).

        Parameters
        ----------
        model : the callable to run (may be wrapped by DDP or ``torch.compile``;
            use :func:`core_model` for attributes).
        batch : dict of tensors on the device, as the dataset yields them
            (uint8 frames: convert with :func:`reference_models.data.to_float`).
        config : the resolved ``TrainConfig``.

        Returns
        -------
        loss : torch.Tensor
            fp32 scalar to backpropagate.
        terms : dict of str to float
            Named terms for ``log.jsonl`` (``{"mse": ...}``).
        """
        output, target, _ = self.outputs(model, batch)
        mse = F.mse_loss(output.float(), target.float())
        return mse, {"mse": float(mse.detach())}

    def learning_rate(self, config, step: int, steps_per_epoch: int) -> float:
        """Learning rate at ``step`` (0-based); constant ``config.lr`` by default.

        ``steps_per_epoch`` = ceil(len(train dataset) / (batch · world size)),
        for schedules stated in epochs.
        """
        return config.lr

    # ------------------------------------------------------------ evaluation
    def outputs(self, model: Callable, batch: dict) -> Outputs:
        """(output, target, blurry input), each [B, N, 3, H, W] float in [0, 1].

        N is the number of scored positions: the frames of the sample for video
        models (``batch["first"]``, ``batch["count"]`` say which frames of the
        window are the sample's own), the K latent frames for latent models,
        1 for pair models.
        """
        if self.sample_kind == "video":
            blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
            out = model(blur)
            m = (blur.shape[1] - out.shape[1]) // 2  # models that drop frames at the ends
            return score_frames(batch, out, sharp[:, m:m + out.shape[1]], blur[:, m:m + out.shape[1]], m)
        if self.sample_kind == "latent":
            blur, latent = to_float(batch["blur"]), to_float(batch["latent"])
            return model(blur), latent, blur.unsqueeze(1).expand_as(latent)
        blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
        return model(blur).unsqueeze(1), sharp.unsqueeze(1), blur.unsqueeze(1)

    def align(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per-sample reordering of ``output`` [B, N, ...] before scoring (identity by default)."""
        return output

    def position_names(self, n: int) -> list[str]:
        """Labels of the ``n`` scored positions: ``t0`` .. ``t{n-1}``."""
        return [f"t{i}" for i in range(n)]


def score_frames(batch: dict, output: torch.Tensor, target: torch.Tensor, blur: torch.Tensor,
                 offset: int = 0) -> Outputs:
    """Keep the frames of a video window that belong to the sample being scored.

    Evaluation windows carry context frames from the neighbouring samples of the
    same clip (``batch["first"]``: the sample's first frame in the window,
    ``batch["count"]``: its frames); ``offset`` is the window frame of
    ``output[:, 0]``. Training windows have no such keys and are returned whole.
    """
    if "first" not in batch:
        return output, target, blur
    first = int(batch["first"].flatten()[0]) - offset
    count = int(batch["count"].flatten()[0])
    lo, hi = max(first, 0), min(first + count, output.shape[1])
    return output[:, lo:hi], target[:, lo:hi], blur[:, lo:hi]


def core_model(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    core = model
    while True:
        inner = getattr(core, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            inner = getattr(core, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return core
        core = inner


def task_of(model: torch.nn.Module) -> ModelTask:
    """The :class:`ModelTask` of ``model`` (``type(core).task``, wrappers removed).

    Raises
    ------
    ValueError
        When the model class has no ``task`` attribute holding a :class:`ModelTask`.
    """
    core = core_model(model)
    task = getattr(type(core), "task", None)
    if not isinstance(task, ModelTask):
        raise ValueError(f"model {type(core).__name__} has no ModelTask in its 'task' class attribute")
    if task.sample_kind not in SAMPLE_KINDS:
        raise ValueError(f"model {type(core).__name__} has sample_kind {task.sample_kind!r}; "
                         f"expected one of {SAMPLE_KINDS}")
    return task
