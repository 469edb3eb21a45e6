"""The training loop shared by every reference model.

``train(TrainConfig(...))`` trains a registered model on a blursynth dataset.
The loop is short and hands its work to named steps of :class:`Trainer`
(BasicSR's ``train.py``/``base_model.py`` are the model): feed data, set the
learning rate, optimize, log, validate, save. What is specific to a model —
its dataset, loss, learning-rate schedule, scoring and the paper's settings —
comes from its :class:`~reference_models.task.ModelTask`, so adding a model
never edits this file.

The run folder holds

* ``checkpoint.pt`` — state dict, config, step, optimizer state, RNG state, the
  split and the training sources, the last metrics (:mod:`.checkpoint`);
* ``model.pt`` — the same without optimizer and RNG state (the file to ship);
* ``log.jsonl`` — one JSON object per logged step (loss, its named terms, lr)
  and per validation (PSNR/SSIM of the output and of the blurry input);
* ``config.json`` — the resolved config; ``split.json`` — the split the run
  made when the dataset had none;
* ``curves.png`` — training loss and validation PSNR (output vs blurry input).

Determinism and resume (on the CPU): the model is initialized from the seed,
the data a step sees depends on (seed, step) only (:class:`StreamSampler`), the
learning rate is a function of the step, and the checkpoint carries the
optimizer state, so ``resume=True`` continues bit for bit where the last
checkpoint left off. Ctrl-C or SIGTERM ends the current step, writes a
checkpoint and stops (:class:`Interrupted`), so ``--resume`` loses nothing.

Multi-GPU: launched by ``torchrun --nproc_per_node G``, each process trains on
its own device under DistributedDataParallel (:mod:`.runtime`); rank r takes
stream positions r, r+G, … so G processes with batch b see what one process
with batch G·b sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from blursynth.errors import BlursynthError, InterruptedRun
from blursynth.dataset.atomic import atomic_write_bytes
from blursynth.curate.selection import load_selection
from blursynth.dataset.outdir import entries, output_folder, temporaries_of
from blursynth.run.signals import stop_between_steps
from reference_models.checkpoint import (
    CHECKPOINT, CHECKPOINT_FORMAT, WEIGHTS, build_model, load_checkpoint, save_checkpoint,
)
from reference_models.curves import plot_training
from reference_models.data import ShardIndex, StreamSampler, seed_worker
from reference_models.evaluate import evaluate_model
from reference_models.metrics import SSIM_WINDOW
from reference_models.runtime import Distributed, autocast
from reference_models.split import (
    SPLIT_FILE, default_split_file, load_split, make_split, sample_across_sources,
)
from reference_models.task import PRESETS, ModelTask, task_of

__all__ = ["CONFIG", "LOG", "Interrupted", "TrainConfig", "Trainer", "default_run_folder", "resolve_defaults",
           "resolve_paths", "train"]

LOG = "log.jsonl"
CONFIG = "config.json"
# What a run writes into its folder before its first checkpoint (a killed run leaves
# them): a new run starts over a folder holding only these (blursynth.dataset.outdir).
EARLY_FILES = (CONFIG, LOG, SPLIT_FILE, "curves.png")

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

# Config fields a resumed run must share with the run it continues.
_IDENTITY = ("model", "model_args", "split_file", "select", "batch", "patch", "clip_len", "lr",
             "lr_decay", "lr_decay_every", "weight_reg", "seed", "amp", "flip", "lr_schedule", "ema")

# Above this, the early progress line suggests --time-budget.
LONG_RUN_S = 3 * 3600


class Interrupted(InterruptedRun):
    """Training stopped by Ctrl-C or SIGTERM after writing a checkpoint.

    An :class:`~blursynth.errors.InterruptedRun` with its own message: the CLI
    prints it on one line and exits with 128 + the signal's number, as a shell
    does for a process that signal killed.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT):
        BlursynthError.__init__(self, message)
        self.signal_number = int(signum)

    @property
    def signum(self) -> int:
        return self.signal_number

    def __reduce__(self):
        return (type(self), (str(self), self.signal_number))


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


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written by a killed run after its last checkpoint)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except ValueError:
            pass  # a line cut by the kill
    atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())


def _available_memory(device: str) -> int | None:
    """Bytes free for a training step on ``device`` (None when unknown)."""
    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _activation_bytes(task: ModelTask, model: torch.nn.Module, item: dict, config: TrainConfig) -> int:
    """Bytes autograd keeps for the backward pass of one item (measured on the CPU)."""
    from torch.autograd.graph import saved_tensors_hooks

    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    batch = {k: v.unsqueeze(0) if torch.is_tensor(v) else torch.as_tensor([v]) for k, v in item.items()}
    device = next(model.parameters()).device
    model.to("cpu")
    try:
        with saved_tensors_hooks(pack, lambda t: t):
            task.loss(model, batch, config)
    finally:
        model.to(device)
    return total


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds} s"
    h, m = divmod(seconds // 60, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


class Trainer:
    """One training run, as named steps; :meth:`fit` is the loop.

    Parameters
    ----------
    config : TrainConfig
        ``data`` and ``out`` must be set.
    env : Distributed
        The entered process group (world 1 for a plain run).
    """

    def __init__(self, config: TrainConfig, env: Distributed):
        if config.data is None or config.out is None:
            raise ValueError("config.data and config.out must be set (the CLI resolves their defaults)")
        self.env = env
        self.quiet = config.quiet
        self.ckpt_step: int | None = None
        self.device = env.device
        self.out = Path(config.out)
        self.task = task_of(build_model(config.model, {}))  # the class's task: the preset's sizes come next
        config = resolve_defaults(config, self.task)
        torch.manual_seed(config.seed)  # the model is initialized from the seed, the same on every rank
        self.model = build_model(config.model, config.model_args)
        self.requested = config.to_json()
        self.ckpt = self._open_run_folder(config)
        self.index = ShardIndex(config.data)
        self.selection = load_selection(config.select, config.data) if config.select is not None else None
        self.config = self._fit_sizes(config)
        self.train_refs, self.val_refs = self._split()
        self._build_data()
        self._build_optimizer()
        self.metrics = dict(self.ckpt.get("metrics", {})) if self.ckpt else {}
        self.window: dict[str, float] = {}
        self.window_steps = 0
        self.last_record: dict | None = None
        self.t0 = time.monotonic()

    # ------------------------------------------------------------ messages
    def log(self, msg: str) -> None:
        """A note on stderr (rank 0, unless quiet)."""
        if self.env.main and not self.quiet:
            from tqdm.auto import tqdm
            tqdm.write(msg, file=sys.stderr)  # on its own line, above a progress bar

    # ----------------------------------------------------------- set-up steps
    def _open_run_folder(self, config: TrainConfig) -> dict | None:
        """The checkpoint to resume from, or None for a new run.

        A new run needs a folder that is empty or holds only what a run killed
        before its first checkpoint wrote (:data:`EARLY_FILES`, whose log is
        started again); anything else in it was not made by this command.
        """
        out = self.out
        if self.env.main:
            out.mkdir(parents=True, exist_ok=True)
        if not (out / CHECKPOINT).exists():
            if config.resume:
                self.log(f"--resume: no checkpoint in {out}; starting a new run")
            early = temporaries_of(EARLY_FILES)
            foreign = [name for name in entries(out) if name not in EARLY_FILES and not early(name)]
            if foreign:
                raise BlursynthError(f"--out {out}: not empty and holds no training run ({foreign[0]}); "
                                     "choose an empty or new folder")
            if self.env.main:
                (out / LOG).unlink(missing_ok=True)  # a killed run's: this run's log starts afresh
            return None
        if not config.resume:
            raise BlursynthError(f"--out {out}: holds a run already; pass --resume to continue it "
                                 "or choose another --out")
        ckpt = load_checkpoint(out / CHECKPOINT)
        old = {**FALLBACK, **ckpt["requested"]}
        differ = [k for k in _IDENTITY if k != "split_file" and old.get(k) != self.requested.get(k)]
        if self.requested.get("lr_schedule") == "cosine" and old.get("steps") != self.requested.get("steps"):
            differ.append("steps")  # the cosine schedule ends at the last step
        if config.split_file is not None and config.split_file != ckpt["config"].get("split_file"):
            differ.append("split_file")
        if differ:
            raise BlursynthError(f"--resume: {', '.join('--' + k.replace('_', '-') for k in differ)} "
                                 f"differ from the run in {out}; use the same values or another --out")
        return ckpt

    def _fit_sizes(self, config: TrainConfig) -> TrainConfig:
        """Fit patch and clip length to small datasets (with a note); a resumed run keeps its own."""
        index = self.index
        if self.ckpt is not None:
            if self.ckpt["dataset_fingerprint"] != index.manifest.fingerprint:
                raise BlursynthError(f"--resume: {config.data} is not the dataset the run in {self.out} "
                                     "trained on")
            stored = self.ckpt["config"]
            return dataclasses.replace(config, patch=stored["patch"], clip_len=stored["clip_len"],
                                       split_file=stored["split_file"])
        changes = {}
        if config.patch == 0:
            changes["patch"] = None
        elif config.patch > min(index.height, index.width):
            size = min(index.height, index.width)
            changes["patch"] = size
            self.log(f"note: --patch {config.patch} is larger than the {index.width}x{index.height} "
                     f"frames; using {size}")
        if self.task.sample_kind == "video":
            shortest = min(len(run) for run in index.runs) * index.seq_len
            if config.clip_len > shortest:
                changes["clip_len"] = shortest
                self.log(f"note: --clip-len {config.clip_len} is longer than the shortest run of "
                         f"consecutive exposures ({shortest} frames); using {shortest}")
        return dataclasses.replace(config, **changes) if changes else config

    def _split(self):
        """Train and validation samples; makes and records a by-source split when there is none."""
        config, index = self.config, self.index
        path = config.split_file
        if path is None and default_split_file(config.data).exists():
            path = str(default_split_file(config.data))
            self.log(f"using the split {path}")
        if path is None:
            path = self._make_split()
        if path is None:
            self.split_doc = None
            return self._selected(index.select(None), "the dataset"), []
        self.config = dataclasses.replace(config, split_file=str(path))
        self.split_doc = load_split(path, config.data)
        train = index.select(self.split_doc["sources"]["train"])
        val = index.select(self.split_doc["sources"].get("val") or [])
        if not train:
            raise BlursynthError(f"{path}: the train split is empty")
        if self.selection is not None:  # each selected sample stays in its source's split
            train = self._selected(train, f"the train split of {path}")
            val = [r for r in val if r.index in self.selection.indices]
        return train, val

    def _selected(self, refs: list, what: str) -> list:
        """``refs`` restricted to ``--select`` (all of them without one), with a note of the count."""
        if self.selection is None:
            return refs
        kept = [r for r in refs if r.index in self.selection.indices]
        if not kept:
            raise BlursynthError(f"--select {self.config.select}: keeps none of the samples of {what}")
        self.log(f"--select {self.config.select}: training on {len(kept)} of {len(refs)} samples of {what}")
        return kept

    def _make_split(self) -> str | None:
        """No split anywhere: split by source into the run folder (train/val/test ≈ 80/10/10)."""
        n = len(self.index.sources)
        if n < 2:
            self.log(f"note: {self.config.data} has one source; training on it all, no held-out split "
                     "(eval-reference will need data from other sources)")
            return None
        val, test = (0.1, 0.1) if n >= 3 else (0.0, 0.5)
        path = self.out / SPLIT_FILE
        if self.env.main:
            make_split(self.config.data, val=val, test=test, seed=self.config.seed, out=path,
                       select=self.selection)
        self.env.barrier()
        doc = load_split(path)
        self.log(f"split by source into {path} (train {len(doc['sources']['train'])}, val "
                 f"{len(doc['sources']['val'])}, test {len(doc['sources']['test'])} sources); "
                 "eval-reference uses it")
        return str(path)

    def _build_data(self) -> None:
        from torch.utils.data import DataLoader

        config, task, env = self.config, self.task, self.env
        self.dataset = task.dataset(self.index, self.train_refs, model=self.model, clip_len=config.clip_len,
                                    patch=config.patch, augment=True, flip=config.flip, seed=config.seed)
        self.val_dataset = None
        if self.val_refs and config.val_samples:
            # A seeded draw across the held-out sources, not the first samples in index order.
            pick = sample_across_sources(self.val_refs, config.val_samples, config.seed)
            self.val_dataset = task.dataset(self.index, pick, model=self.model,
                                            clip_len=None, patch=None, augment=False, flip=False,
                                            seed=config.seed)
        self._check_memory()
        self.steps_per_epoch = math.ceil(len(self.dataset) / (config.batch * env.world))
        self.start = int(self.ckpt["step"]) if self.ckpt else 0
        sampler = StreamSampler(len(self.dataset), config.seed, start=self.start * config.batch * env.world,
                                rank=env.rank, world=env.world)
        self.loader = DataLoader(self.dataset, batch_size=config.batch, sampler=sampler,
                                 num_workers=config.workers, worker_init_fn=seed_worker,
                                 generator=torch.Generator().manual_seed(config.seed),
                                 pin_memory=self.device.startswith("cuda"), persistent_workers=False,
                                 prefetch_factor=2 if config.workers else None)

    def _check_memory(self) -> None:
        """Refuse a --batch whose step cannot fit in memory, with the estimate (issue: --batch 100000)."""
        batch = self.config.batch
        item = self.dataset[(0, 0)]
        item_bytes = sum(4 * v.numel() for v in item.values() if torch.is_tensor(v))  # as float32
        available = _available_memory(self.device)
        if available is None or 8 * batch * item_bytes < available / 4:
            return  # far from the limit: not worth a measurement
        per_item = item_bytes + _activation_bytes(self.task, self.model, item, self.config)
        need = batch * per_item
        if need > available:
            gib = 2 ** 30
            raise BlursynthError(
                f"--batch {batch}: one training step needs about {need / gib:.1f} GiB "
                f"({per_item / 2 ** 20:.1f} MiB per sample at --patch {self.config.patch} "
                f"--clip-len {self.config.clip_len}), more than the {available / gib:.1f} GiB available "
                f"on {self.device}; use a smaller --batch or --patch")

    def _build_optimizer(self) -> None:
        config, model = self.config, self.model
        model.to(self.device)
        # NHWC convolutions: faster on GPUs and, with oneDNN, on the CPU (docs/benchmarks.md)
        model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        self.ema = None
        if config.ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
        if self.ckpt is not None:
            # with an EMA, "state_dict" holds the averaged weights and "train_state_dict" the trained ones
            model.load_state_dict(self.ckpt.get("train_state_dict", self.ckpt["state_dict"]))
            if self.ema is not None:
                self.ema.module.load_state_dict(self.ckpt["state_dict"])
                self.ema.n_averaged.fill_(self.start)
            self.optimizer.load_state_dict(self.ckpt["optimizer"])
            torch.set_rng_state(self.ckpt["rng"]["torch"])
            if self.env.main:
                _trim_log(self.out / LOG, self.start)
            self.log(f"resuming {self.out} at step {self.start}")
        self.wrapped = model
        if self.env.world > 1:
            from torch.nn.parallel import DistributedDataParallel
            # static_graph copes with parameters the forward leaves out (F_n of the last
            # step of a clip) that a weight penalty computed outside the forward reaches.
            self.wrapped = DistributedDataParallel(
                model, device_ids=[torch.device(self.device).index] if self.device.startswith("cuda") else None,
                static_graph=True)
        if config.compile:
            self.wrapped = torch.compile(self.wrapped)
        if self.env.main:
            atomic_write_bytes(self.out / CONFIG, (json.dumps(config.to_json(), indent=1) + "\n").encode())

    # ----------------------------------------------------------- loop steps
    def feed_data(self, batch: dict) -> dict:
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    @property
    def scored_model(self) -> torch.nn.Module:
        """The weights that validation scores and ``model.pt`` holds: the EMA when there is one."""
        return self.model if self.ema is None else self.ema.module

    def update_learning_rate(self, step: int) -> float:
        lr = learning_rate(self.config, self.task, step, self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def optimize(self, batch: dict, step: int) -> None:
        with autocast(self.device, self.config.amp):
            loss, terms = self.task.loss(self.wrapped, batch, self.config)
        value = float(loss.detach())
        if self.env.any(not math.isfinite(value)):
            done = int(self.ckpt_step) if self.ckpt_step is not None else None
            raise BlursynthError(
                f"step {step + 1}: the loss is {value} (training diverged; no weights written after it"
                + (f", the checkpoint of step {done} is kept" if done else "")
                + "); lower --lr or --weight-reg")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        for k, v in {"loss": value, **terms}.items():
            self.window[k] = self.window.get(k, 0.0) + float(v)
        self.window_steps += 1

    def log_step(self, step: int, lr: float) -> None:
        record = {"step": step, **{k: v / self.window_steps for k, v in self.window.items()}, "lr": lr,
                  "elapsed_s": round(time.monotonic() - self.t0, 3)}
        self.window, self.window_steps = {}, 0
        self.last_record = record
        self.metrics["loss"] = record["loss"]
        if self.env.main:
            _append_log(self.out / LOG, record)

    def validate(self, step: int) -> None:
        if self.val_dataset is None or not self.env.main:
            return
        res = evaluate_model(self.scored_model, self.val_dataset, device=self.device, amp=self.config.amp,
                             crop=self.config.val_crop)
        self.model.train()
        self.metrics.update(val_psnr=res["psnr"]["output"], val_psnr_input=res["psnr"]["input"])
        _append_log(self.out / LOG, {"step": step, "val_psnr": res["psnr"]["output"],
                                     "val_psnr_input": res["psnr"]["input"], "val_ssim": res["ssim"]["output"],
                                     "val_ssim_input": res["ssim"]["input"]})
        self.log(f"step {step}: val PSNR {res['psnr']['output']:.2f} dB "
                 f"(input {res['psnr']['input']:.2f} dB)")

    def save(self, step: int) -> None:
        if self.env.main:
            config = self.config
            state = {k: v.detach().cpu() for k, v in self.scored_model.state_dict().items()}
            base = {"format": CHECKPOINT_FORMAT, "model": config.model, "model_args": config.model_args,
                    "config": config.to_json(), "requested": self.requested,
                    "dataset_fingerprint": self.index.manifest.fingerprint, "step": step,
                    "train_sources": sorted({r.source for r in self.train_refs}),
                    "split": self.split_doc, "state_dict": state, "metrics": self.metrics}
            resume = {"optimizer": self.optimizer.state_dict(), "rng": {"torch": torch.get_rng_state()}}
            if self.ema is not None:
                resume["train_state_dict"] = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
            save_checkpoint(self.out / CHECKPOINT, {**base, **resume})
            save_checkpoint(self.out / WEIGHTS, base)
        self.ckpt_step = step

    def report_speed(self, step: int, t_loop: float) -> None:
        """One early line: seconds per step, the time left, and a hint for long runs."""
        config = self.config
        per_step = (time.monotonic() - t_loop) / max(step - self.start, 1)
        left = per_step * (config.steps - step)
        steps = f"{config.steps:,} steps"
        if config.time_budget_s is not None:
            budget_left = max(config.time_budget_s - (time.monotonic() - self.t0), 0.0)
            if budget_left < left:  # the budget ends the run first: show the steps that fit in it
                left = budget_left
                steps = (f"about {min(config.steps, step + int(left / max(per_step, 1e-9))):,} steps in the "
                         f"{config.time_budget_s / 60:.3g} min budget")
        eta = time.strftime("%a %d %b %H:%M" if left > 20 * 3600 else "%H:%M", time.localtime(time.time() + left))
        msg = f"{per_step:.2f} s/step on {self.device}; {steps}: about {_duration(left)} left (ETA {eta})"
        if left > LONG_RUN_S and config.time_budget_s is None:
            msg += "; pass --time-budget MINUTES (or fewer --steps) to stop sooner"
        self.log(msg)

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        """Train from the start (or checkpoint) step to ``config.steps``; return the final metrics."""
        config = self.config
        from tqdm.auto import tqdm
        budgeted = config.time_budget_s is not None
        bar = tqdm(total=None if budgeted else config.steps, initial=self.start, unit="step",
                   desc=f"{config.model} ({config.time_budget_s / 60:.3g} min budget)" if budgeted else config.model,
                   file=sys.stderr, disable=config.quiet or not self.env.main, dynamic_ncols=True)
        step, self.ckpt_step = self.start, (self.start if self.ckpt else None)
        if step >= config.steps:
            self.log(f"the run in {self.out} is at step {step} >= --steps {config.steps}; nothing to do")
        self.model.train()
        batches = iter(self.loader)
        t_loop, reported = time.monotonic(), False
        try:
            with stop_between_steps() as signals:
                while step < config.steps:
                    try:
                        batch = self.feed_data(next(batches))
                    except RuntimeError:
                        if signals.signum is None:
                            raise
                        break  # a DataLoader worker ended by the same Ctrl-C
                    lr = self.update_learning_rate(step)
                    self.optimize(batch, step)
                    step += 1
                    bar.update(1)
                    # Early: after 3 steps, or after the first step that ends 20 s in (a slow CPU).
                    if not reported and (step - self.start >= 3 or step == config.steps
                                         or time.monotonic() - t_loop >= 20):
                        self.report_speed(step, t_loop)
                        reported = True
                    stop = budgeted and time.monotonic() - self.t0 >= config.time_budget_s
                    stop = self.env.any(stop or signals.signum is not None)
                    final = step == config.steps or stop
                    if step % config.log_every == 0 or final:
                        self.log_step(step, lr)
                        bar.set_postfix(loss=f"{self.last_record['loss']:.5f}")
                    if step % config.val_every == 0 or (final and signals.signum is None):
                        self.validate(step)
                    if step % config.ckpt_every == 0 or final:
                        self.save(step)
                        self.env.barrier()
                    if stop:
                        break
                if signals.signum is not None:
                    if self.ckpt_step != step:
                        self.save(step)
                    if self.env.main and (self.out / LOG).exists():
                        plot_training(self.out)  # the curves so far, beside the checkpoint
                    name = signal.Signals(signals.signum).name
                    raise Interrupted(f"{name} at step {step}: checkpoint written to {self.out}; "
                                      "re-run the same command with --resume to continue", signals.signum)
                if budgeted and step < config.steps:
                    self.log(f"time budget of {config.time_budget_s / 60:.3g} min reached at step {step}")
        finally:
            bar.close()
            shutdown = getattr(batches, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
        if self.ckpt_step is None and self.env.main:
            self.save(step)
        if self.env.main and (self.out / LOG).exists():
            plot_training(self.out)
        loss = self.last_record["loss"] if self.last_record else self.metrics.get("loss", math.nan)
        return {"step": step, "loss": loss, "val_psnr": self.metrics.get("val_psnr"),
                "val_psnr_input": self.metrics.get("val_psnr_input"),
                "elapsed_s": time.monotonic() - self.t0, "run": str(self.out),
                "n_train": len(self.train_refs), "n_val": len(self.val_refs)}


def default_run_folder(model: str, resume: bool = False, root: str | Path = "runs") -> Path:
    """``runs/<model>``, or ``runs/<model>-2``, ``-3``, … when that is taken.

    With ``resume``, the last of those that holds a checkpoint (the run to continue).
    """
    root = Path(root)
    names = [model] + [f"{model}-{k}" for k in range(2, 10_000)]
    taken = []
    for name in names:
        if not (root / name).exists():
            break
        taken.append(root / name)
    if resume:
        held = [c for c in taken if (c / CHECKPOINT).exists()]
        if held:
            return held[-1]
    for c in taken:
        if c.is_dir() and not entries(c):  # empty but for a lock a failed run left
            return c
    if len(taken) == len(names):
        raise BlursynthError(f"{root}: no free run folder for {model}; pass --out")
    return root / names[len(taken)]


def resolve_paths(config: TrainConfig, log=None) -> TrainConfig:
    """Fill ``data`` (the built-in sample dataset of the model's kind) and ``out`` (``runs/<model>``)."""
    from reference_models.sample_data import sample_dataset

    log = log or (lambda msg: None if config.quiet else print(msg, file=sys.stderr))
    changes = {}
    if config.data is None:
        kind = task_of(build_model(config.model, config.model_args)).sample_kind
        changes["data"] = str(sample_dataset(kind, log))
    if config.out is None:
        changes["out"] = str(default_run_folder(config.model, config.resume))
        log(f"run folder: {changes['out']} (pass --out to choose)")
    return dataclasses.replace(config, **changes) if changes else config


def train(config: TrainConfig) -> dict:
    """Train ``config.model`` on ``config.data`` into ``config.out``; return the final metrics.

    ``data=None`` trains on the built-in sample dataset suited to the model
    (:mod:`reference_models.sample_data`); ``out=None`` writes to
    ``runs/<model>`` (``runs/<model>-2``, … when taken).

    Returns
    -------
    dict
        ``{"step", "loss", "val_psnr", "val_psnr_input", "elapsed_s", "run", "n_train", "n_val"}``;
        ``loss`` is the last value written to ``log.jsonl``; ``n_train`` and
        ``n_val`` count the samples of the train and validation splits used
        (after ``select``).

    Raises
    ------
    Interrupted
        After Ctrl-C or SIGTERM, once the checkpoint of the current step is written.
    BlursynthError
        For bad options, a dataset the model cannot learn from, or a diverged loss.
    """
    with Distributed(config.device) as env:
        if env.main:
            config = resolve_paths(config)
        if env.world > 1:  # every rank must agree on the data and the run folder
            box = [config.data, config.out]
            dist.broadcast_object_list(box, src=0)
            config = dataclasses.replace(config, data=box[0], out=box[1])
        # The run folder is locked for the whole run (a second run on it stops in one
        # line); one that this call made is removed again if an error leaves it empty.
        with output_folder(config.out) if env.main else contextlib.nullcontext():
            return Trainer(config, env).fit()
