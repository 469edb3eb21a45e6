"""What defines a training run: :class:`TrainConfig`, its presets and its learning-rate schedules.

A run's config is JSON-able (checkpoints store it). Fields a user leaves
``None`` take the model's preset (:func:`resolve_defaults`: ``paper`` from
``ModelTask.defaults``, ``probe`` from ``ModelTask.probe``), then
:data:`FALLBACK`; :func:`learning_rate` gives the rate at each step.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from blursynth.errors import BlursynthError
from reference_models.metrics import SSIM_WINDOW
from reference_models.task import PRESETS, ModelTask

__all__ = ["FALLBACK", "LR_FLOOR", "LR_SCHEDULES", "TrainConfig", "learning_rate", "resolve_defaults"]

# Fields a model's task may set in ``ModelTask.defaults``; these values serve a
# model whose task sets none.
FALLBACK = {"steps": 10_000, "batch": 8, "patch": 128, "clip_len": 13, "lr": 1e-4, "lr_decay": 1.0,
            "lr_decay_every": 10_000, "weight_reg": 0.0, "lr_schedule": "paper", "ema": 0.0}

# Learning-rate schedules: the model's paper schedule (ModelTask.learning_rate), or a
# cosine decay to LR_FLOOR·lr at the last step after a linear warm-up (the probe
# preset: the last steps of a short run then move the weights little, so the scored
# weights do not depend on where a fixed-rate run happened to stop).
LR_SCHEDULES = ("paper", "cosine")
LR_FLOOR = 0.01


@dataclass
class TrainConfig:
    """Everything that defines a training run (JSON-able: it is stored in checkpoints).

    Fields left ``None`` among ``steps``, ``batch``, ``patch``, ``clip_len``,
    ``lr``, ``lr_decay``, ``lr_decay_every``, ``weight_reg``, ``lr_schedule``
    and ``ema`` take their value from the ``preset`` (``paper``: the model's
    paper values, ``ModelTask.defaults``; ``probe``: ``ModelTask.probe``), and
    ``model_args`` from the preset's ``model_args`` under the user's own
    (:func:`resolve_defaults`). ``lr_schedule``: ``paper`` (the model's
    schedule) or ``cosine`` (to the last step). ``ema``: decay of the
    exponential moving average of the weights that ``model.pt`` holds and
    validation scores (0: the trained weights themselves).
    ``patch=0`` trains on whole frames. ``data=None`` and ``out=None`` are
    resolved by the CLI (built-in sample dataset, ``runs/<model>``).
    ``select`` is a selection file (``blursynth filter``): training and
    validation use only its samples, each in the split of its source.
    """

    data: str | None = None
    out: str | None = None
    model: str = "dtb"
    model_args: dict = field(default_factory=dict)
    preset: str | None = None
    steps: int | None = None
    batch: int | None = None
    patch: int | None = None
    clip_len: int | None = None
    lr: float | None = None
    lr_decay: float | None = None
    lr_decay_every: int | None = None
    weight_reg: float | None = None
    lr_schedule: str | None = None
    ema: float | None = None
    flip: bool = True
    seed: int = 0
    split_file: str | None = None
    select: str | None = None
    device: str = "auto"
    amp: str = "none"
    compile: bool = False
    workers: int = 2
    log_every: int = 20
    val_every: int = 1000
    val_samples: int = 8
    val_crop: int | None = 256
    ckpt_every: int = 500
    time_budget_s: float | None = None
    resume: bool = False
    quiet: bool = False

    def __post_init__(self):
        def finite(v):
            return v is None or (isinstance(v, (int, float)) and math.isfinite(v))

        checks = {
            "steps": self.steps is None or self.steps >= 1, "batch": self.batch is None or self.batch >= 1,
            "lr": self.lr is None or (finite(self.lr) and self.lr > 0),
            "lr_decay": self.lr_decay is None or (finite(self.lr_decay) and 0 < self.lr_decay <= 1),
            "lr_decay_every": self.lr_decay_every is None or self.lr_decay_every >= 1,
            "weight_reg": self.weight_reg is None or (finite(self.weight_reg) and self.weight_reg >= 0),
            "ema": self.ema is None or (finite(self.ema) and 0 <= self.ema < 1),
            "workers": self.workers >= 0, "log_every": self.log_every >= 1,
            "val_every": self.val_every >= 1, "ckpt_every": self.ckpt_every >= 1,
            "val_samples": self.val_samples >= 0, "seed": self.seed >= 0,
            "patch": self.patch is None or self.patch == 0 or self.patch >= 8,
            "clip_len": self.clip_len is None or self.clip_len >= 1,
            "val_crop": self.val_crop is None or self.val_crop >= SSIM_WINDOW,
            "time_budget": self.time_budget_s is None or (finite(self.time_budget_s) and self.time_budget_s > 0),
        }
        for name, ok in checks.items():
            if not ok:
                value = getattr(self, name if name != "time_budget" else "time_budget_s")
                if name == "time_budget":
                    value = value / 60.0  # the CLI option is in minutes
                raise BlursynthError(f"--{name.replace('_', '-')} {value}: out of range"
                                     + (" (must be a finite number)" if not finite(value) else ""))
        if self.lr_schedule is not None and self.lr_schedule not in LR_SCHEDULES:
            raise BlursynthError(f"--lr-schedule {self.lr_schedule}: expected {' or '.join(LR_SCHEDULES)}")
        if self.preset is not None and self.preset not in PRESETS:
            raise BlursynthError(f"--preset {self.preset}: expected {' or '.join(PRESETS)}")
        if self.amp not in ("none", "bf16"):
            raise BlursynthError(f"--amp {self.amp}: expected none or bf16")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise BlursynthError(f"--device {self.device}: expected auto, cpu, cuda or cuda:N")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def resolve_defaults(config: TrainConfig, task: ModelTask) -> TrainConfig:
    """Fill the fields left ``None`` from the preset (``paper`` when none is named), else :data:`FALLBACK`.

    The preset's ``model_args`` come under the user's own (``--model-arg`` wins).
    """
    name = config.preset or "paper"
    values = task.preset(name)
    changes = {k: values.get(k, v) for k, v in FALLBACK.items() if getattr(config, k) is None}
    if values.get("model_args"):
        changes["model_args"] = {**values["model_args"], **config.model_args}
    return dataclasses.replace(config, preset=name, **changes)


def learning_rate(config: TrainConfig, task: ModelTask, step: int, steps_per_epoch: int) -> float:
    """The learning rate at ``step`` (0-based) under ``config.lr_schedule``.

    ``cosine``: a linear warm-up over the first min(100, steps/20) steps, then
    ``lr · (f + (1 − f)(1 + cos πu)/2)`` with u the fraction of the remaining
    steps done and f = :data:`LR_FLOOR`; ``paper``: the model's own schedule.
    """
    if config.lr_schedule != "cosine":
        return task.learning_rate(config, step, steps_per_epoch)
    warm = max(1, min(100, config.steps // 20))
    if step < warm:
        return config.lr * (step + 1) / warm
    u = min(1.0, (step - warm) / max(1, config.steps - warm - 1))
    return config.lr * (LR_FLOOR + (1.0 - LR_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * u)))
