"""What a model learns from, how it runs, how it is trained and scored: :class:`ModelTask`.

Each model class carries an instance of a :class:`ModelTask` subclass as its
class attribute ``task``; the registry (:func:`reference_models.registry.task_for`)
finds it from a model's name. The training loop, the evaluation, ``validate``,
``deblur``, the CLI help and the GPU script ask the task, never the model name,
for

* the data form the model learns from (:attr:`ModelTask.learns_from`), the
  dataset that feeds it (:meth:`ModelTask.dataset`), and the data forms it
  validates when ``validate`` picks a model (:attr:`ModelTask.validates`,
  :attr:`ModelTask.validator`),
* how it runs at inference (:attr:`ModelTask.inference`: online with a state,
  a window of frames, or K frames per image), its context
  (:meth:`ModelTask.context`) and its outputs per input
  (:meth:`ModelTask.outputs_per_input`),
* the training loss and its named terms (:meth:`ModelTask.loss`),
* the learning rate at a step (:meth:`ModelTask.learning_rate`),
* the output, target and blurry input to score (:meth:`ModelTask.outputs`),
  the per-sample alignment of output to target (:meth:`ModelTask.align`) and
  the names of the scored positions (:meth:`ModelTask.position_names`),
* the training presets (:meth:`ModelTask.preset`): ``paper`` (the paper's
  sizes and schedule, :attr:`ModelTask.defaults`) and ``probe`` (a small model
  and schedule measured for the most held-out gain per CPU minute,
  :attr:`ModelTask.probe`), used for every option the user did not give, and
  the panorama recipe that makes each preset's training data
  (:attr:`ModelTask.data_recipes`).

So adding a model never edits the training loop, ``validate``, ``deblur`` or
the scripts. The contract is written down in docs/models.md ("Adding a model").
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from reference_models.data import (
    LatentDataset, PairDataset, SampleRef, ShardIndex, VideoClipDataset, to_float,
)

__all__ = ["DATA_FORMS", "INFERENCE", "ModelTask", "Outputs", "PRESETS", "check_task", "core_model", "data_forms",
           "task_of"]

Outputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
# What a model learns from: a blurry clip -> its sharp clip ("video"), one blurry frame ->
# its K latent frames ("latent"), one blurry frame -> its sharp frame ("pair").
DATA_FORMS = ("video", "latent", "pair")
# How a model runs at inference, and the data forms each fits (ModelTask.inference).
INFERENCE = {"online": ("video",), "window": ("video",), "image": ("latent", "pair")}
# ``paper``: the paper's model and schedule (a GPU's work); ``probe``: small and
# short enough to answer "does this data teach?" on two CPU cores (docs/models.md).
PRESETS = ("paper", "probe")


class ModelTask:
    """The whole contract of one model family (defaults for a plain video model).

    Attributes
    ----------
    learns_from : {"video", "latent", "pair"}
        The data form the model learns from and is scored on: ``"video"``
        (blurry clip -> sharp clip), ``"latent"`` (one blurry frame -> its K
        latent frames) or ``"pair"`` (one blurry frame -> its sharp frame);
        it picks the dataset class of :mod:`reference_models.data` that feeds
        the model (:meth:`dataset`).
    inference : {"online", "window", "image"}
        How the model runs on footage (evaluation, ``validate``, ``deblur``):
        ``"online"``, a recurrent video model whose state carries across the
        consecutive exposures of a run, as the model deblurs a video
        sequentially: its forward takes ``state=`` and ``return_state=True``
        (like :meth:`reference_models.dtb.DTBNet.forward`) and returns the
        outputs of the frames that have :meth:`context` neighbours on each
        side, and the state after the last; ``"window"``, a video model run on
        each frame with its :meth:`context` neighbours, on their own;
        ``"image"``, one blurry frame in, :meth:`outputs_per_input` frames out
        (``[B, 3, H, W]`` or ``[B, K, 3, H, W]``). Video models take
        ``pad=True`` to repeat the first and last frame at a sequence's ends.
    validates : dict of str to int
        The data forms this family validates when ``validate`` picks a model
        for a dataset (no ``--model``), each with a priority. The dataset's
        forms are tried in its order of preference (:func:`data_forms`); for
        the first form any family validates, the family with the highest
        priority wins, and among equal priorities the validator whose name
        sorts first
        (:func:`reference_models.registry.model_for_data`).
    validator : str or None
        The registered model that stands for the family where one is picked
        for the data: the full model, not an ablation (``None``: the family
        validates nothing).
    defaults : dict
        :class:`~reference_models.train.TrainConfig` field -> the paper's value,
        used when the user gave neither a flag nor a recipe value (for example
        ``{"batch": 8, "patch": 128, "lr": 1e-4, "clip_len": 13}``): the
        ``paper`` preset.
    probe : dict
        The ``probe`` preset: TrainConfig fields (``steps`` included) and
        ``model_args`` (the smaller model), chosen by measurement on 2 CPU
        cores (docs/models.md, "Presets"). Empty: the paper's settings.
    data_recipes : dict of str to str
        Preset -> the ``blursynth panorama`` recipe that makes its training
        data from panoramas (an installed recipe's name, or a TOML file
        relative to the ``reference_models`` folder), read by
        ``gpu/train_reference.sh`` and ``reference_models/weights/train.sh``
        (``python -m reference_models recipe MODEL --preset P``).
    """

    learns_from: str = "video"
    inference: str = "window"
    validates: dict = {}
    validator: str | None = None
    defaults: dict = {}
    probe: dict = {}
    data_recipes: dict = {}

    def context(self, model: torch.nn.Module) -> int:
        """m: the neighbouring frames on each side that an output of a video model needs.

        A video model of ``frames`` = 2m+1 input frames per output (its
        attribute; 1 when it has none) needs m; an image model needs none.
        """
        if self.inference == "image":
            return 0
        return int(getattr(core_model(model), "frames", 1)) // 2

    def outputs_per_input(self, model: torch.nn.Module) -> int:
        """K: the frames an image model writes per blurry frame (its ``frames`` for a latent
        model); 1 for pair and video models."""
        if self.learns_from != "latent":
            return 1
        return int(getattr(core_model(model), "frames", 1))

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
        clip_len : frames per training window (video form; ``None``: evaluation
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
        if self.learns_from == "video":
            need = getattr(model, "frames", 1)
            return VideoClipDataset(index, refs, clip_len=clip_len, min_frames=need,
                                    context=0 if clip_len is not None else need // 2, **common)
        if self.learns_from == "latent":
            return LatentDataset(index, refs, **common)
        if self.learns_from == "pair":
            return PairDataset(index, refs, **common)
        raise ValueError(f"learns_from {self.learns_from!r} is not one of {DATA_FORMS}")

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
        if self.learns_from == "video":
            blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
            out = model(blur)
            m = (blur.shape[1] - out.shape[1]) // 2  # models that drop frames at the ends
            return score_frames(batch, out, sharp[:, m:m + out.shape[1]], blur[:, m:m + out.shape[1]], m)
        if self.learns_from == "latent":
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


# A video model needs runs of at least this many consecutive frames (a centre frame and one
# neighbour on each side) before ``validate`` prefers a video model for a dataset.
VIDEO_MIN_FRAMES = 3


def data_forms(index: ShardIndex) -> list[str]:
    """The data forms ``index`` can feed, in order of preference.

    ``video`` first when its runs of consecutive exposures give a video model
    :data:`VIDEO_MIN_FRAMES` frames; then ``latent`` when its samples have
    latent frames, else ``pair`` (every sample has a blurred and a sharp frame).
    """
    longest = max(len(run) for run in index.runs) * index.seq_len
    forms = ["video"] if longest >= VIDEO_MIN_FRAMES else []
    return forms + ["latent" if index.n_latent else "pair"]


def check_task(task, owner: str) -> "ModelTask":
    """``task`` when it is a :class:`ModelTask` that states a consistent contract.

    Raises
    ------
    ValueError
        Naming ``owner`` (the model class or registered name): no ModelTask, an
        unknown data form or inference mode, an inference mode that does not
        fit the data form, a validated form that is unknown.
    """
    if not isinstance(task, ModelTask):
        raise ValueError(f"{owner} has no ModelTask in its 'task' class attribute")
    if task.learns_from not in DATA_FORMS:
        raise ValueError(f"{owner}: learns_from {task.learns_from!r} is not one of {', '.join(DATA_FORMS)}")
    if task.inference not in INFERENCE:
        raise ValueError(f"{owner}: inference {task.inference!r} is not one of {', '.join(INFERENCE)}")
    if task.learns_from not in INFERENCE[task.inference]:
        raise ValueError(f"{owner}: inference {task.inference!r} does not fit {task.learns_from} data "
                         f"(it fits {', '.join(INFERENCE[task.inference])})")
    unknown = sorted(set(task.validates) - set(DATA_FORMS))
    if unknown:
        raise ValueError(f"{owner}: validates {', '.join(unknown)}, not data forms ({', '.join(DATA_FORMS)})")
    return task


def task_of(model: torch.nn.Module) -> ModelTask:
    """The :class:`ModelTask` of ``model`` (``type(core).task``, wrappers removed).

    Raises
    ------
    ValueError
        When the model class has no ``task`` attribute holding a consistent
        :class:`ModelTask` (:func:`check_task`).
    """
    core = core_model(model)
    return check_task(getattr(type(core), "task", None), f"model {type(core).__name__}")
