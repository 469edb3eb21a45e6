"""Setting up a training run, step by step, before the loop starts.

Each step is a function that :class:`~reference_models.train.Trainer` calls in
this order:

1. :func:`open_run_folder`: a new run needs an empty folder; a resumed run
   must share its identity (:data:`IDENTITY`) with the run it continues;
2. :func:`fit_sizes`: patch and clip length fitted to a small dataset (a
   resumed run keeps its own);
3. :func:`split_samples`: train and validation samples, by source (the
   dataset's split, ``--split-file``, or a split made into the run folder),
   within ``--select``;
4. :func:`build_datasets` and :func:`check_memory`: the model's datasets, and
   a refusal of a ``--batch`` whose step cannot fit in memory;
5. :func:`make_loader`: the stream of batches from the step the run starts at;
6. :func:`build_optimizer`, :func:`restore` (resume: weights, EMA, optimizer,
   RNG, log), :func:`wrap_model` (DDP, ``torch.compile``).

:func:`agree_on_paths` (with :func:`resolve_paths`) fills the dataset and run
folder a user left out, before all of them; :func:`write_config` records the
resolved config.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist

from blursynth.curate.selection import Selection
from blursynth.atomic import atomic_write_bytes
from blursynth.dataset.outdir import entries, temporaries_of
from blursynth.errors import BlursynthError
from reference_models.checkpoint import CHECKPOINT, build_model, load_checkpoint
from reference_models.data import SampleRef, ShardIndex, StreamSampler, seed_worker
from reference_models.runtime import Distributed
from reference_models.heldout import SPLIT_FILE, default_split_file, load_split, make_split, sample_across_sources
from reference_models.task import ModelTask, task_of
from reference_models.train_config import FALLBACK, TrainConfig

__all__ = ["CONFIG", "EARLY_FILES", "IDENTITY", "LOG", "agree_on_paths", "build_datasets", "build_optimizer",
           "check_memory", "default_run_folder", "fit_sizes", "make_loader", "open_run_folder", "resolve_paths",
           "restore", "split_samples", "steps_per_epoch", "wrap_model", "write_config"]

Log = Callable[[str], None]

LOG = "log.jsonl"
CONFIG = "config.json"
# What a run writes into its folder before its first checkpoint (a killed run leaves
# them): a new run starts over a folder holding only these (blursynth.dataset.outdir).
EARLY_FILES = (CONFIG, LOG, SPLIT_FILE, "curves.png")

# Config fields a resumed run must share with the run it continues.
IDENTITY = ("model", "model_args", "split_file", "select", "batch", "patch", "clip_len", "lr",
            "lr_decay", "lr_decay_every", "weight_reg", "seed", "amp", "flip", "lr_schedule", "ema")


# ------------------------------------------------------------ run folder
def open_run_folder(config: TrainConfig, requested: dict, env: Distributed, log: Log) -> dict | None:
    """The checkpoint to resume from, or None for a new run.

    A new run needs a folder that is empty or holds only what a run killed
    before its first checkpoint wrote (:data:`EARLY_FILES`, whose log is
    started again); anything else in it was not made by this command. A
    resumed run must ask for the same :data:`IDENTITY` as the run it continues
    (``requested``: the config as the user gave it, with the preset's values).
    """
    out = Path(config.out)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
    if not (out / CHECKPOINT).exists():
        if config.resume:
            log(f"--resume: no checkpoint in {out}; starting a new run")
        early = temporaries_of(EARLY_FILES)
        foreign = [name for name in entries(out) if name not in EARLY_FILES and not early(name)]
        if foreign:
            raise BlursynthError(f"--out {out}: not empty and holds no training run ({foreign[0]}); "
                                 "choose an empty or new folder")
        if env.main:
            (out / LOG).unlink(missing_ok=True)  # a killed run's: this run's log starts afresh
        return None
    if not config.resume:
        raise BlursynthError(f"--out {out}: holds a run already; pass --resume to continue it "
                             "or choose another --out")
    ckpt = load_checkpoint(out / CHECKPOINT)
    old = {**FALLBACK, **ckpt["requested"]}
    differ = [k for k in IDENTITY if k != "split_file" and old.get(k) != requested.get(k)]
    if requested.get("lr_schedule") == "cosine" and old.get("steps") != requested.get("steps"):
        differ.append("steps")  # the cosine schedule ends at the last step
    if config.split_file is not None and config.split_file != ckpt["config"].get("split_file"):
        differ.append("split_file")
    if differ:
        raise BlursynthError(f"--resume: {', '.join('--' + k.replace('_', '-') for k in differ)} "
                             f"differ from the run in {out}; use the same values or another --out")
    return ckpt


def fit_sizes(config: TrainConfig, index: ShardIndex, task: ModelTask, ckpt: dict | None, log: Log) -> TrainConfig:
    """Fit patch and clip length to small datasets (with a note); a resumed run keeps its own."""
    if ckpt is not None:
        if ckpt["dataset_fingerprint"] != index.manifest.fingerprint:
            raise BlursynthError(f"--resume: {config.data} is not the dataset the run in {Path(config.out)} "
                                 "trained on")
        stored = ckpt["config"]
        return dataclasses.replace(config, patch=stored["patch"], clip_len=stored["clip_len"],
                                   split_file=stored["split_file"])
    changes = {}
    if config.patch == 0:
        changes["patch"] = None
    elif config.patch > min(index.height, index.width):
        size = min(index.height, index.width)
        changes["patch"] = size
        log(f"note: --patch {config.patch} is larger than the {index.width}x{index.height} "
            f"frames; using {size}")
    if task.learns_from == "video":
        shortest = min(len(run) for run in index.runs) * index.seq_len
        if config.clip_len > shortest:
            changes["clip_len"] = shortest
            log(f"note: --clip-len {config.clip_len} is longer than the shortest run of "
                f"consecutive exposures ({shortest} frames); using {shortest}")
    return dataclasses.replace(config, **changes) if changes else config


# ----------------------------------------------------------------- split
def split_samples(config: TrainConfig, index: ShardIndex, selection: Selection | None, env: Distributed,
                  log: Log) -> tuple[TrainConfig, dict | None, list[SampleRef], list[SampleRef]]:
    """Train and validation samples; makes and records a by-source split when there is none.

    Returns
    -------
    config : TrainConfig
        With ``split_file`` set to the split used (unchanged without one).
    split_doc : dict or None
        The split (None: one source, trained on whole).
    train, val : list of SampleRef
        The samples of the train and validation sources, within ``selection``.
    """
    path = config.split_file
    if path is None and default_split_file(config.data).exists():
        path = str(default_split_file(config.data))
        log(f"using the split {path}")
    if path is None:
        path = _make_split(config, index, selection, env, log)
    if path is None:
        return config, None, _selected(index.select(None), "the dataset", config, selection, log), []
    split_doc = load_split(path, config.data)
    train = index.select(split_doc["sources"]["train"])
    val = index.select(split_doc["sources"].get("val") or [])
    if not train:
        raise BlursynthError(f"{path}: the train split is empty")
    if selection is not None:  # each selected sample stays in its source's split
        train = _selected(train, f"the train split of {path}", config, selection, log)
        val = [r for r in val if r.index in selection.indices]
    return dataclasses.replace(config, split_file=str(path)), split_doc, train, val


def _selected(refs: list, what: str, config: TrainConfig, selection: Selection | None, log: Log) -> list:
    """``refs`` restricted to ``--select`` (all of them without one), with a note of the count."""
    if selection is None:
        return refs
    kept = [r for r in refs if r.index in selection.indices]
    if not kept:
        raise BlursynthError(f"--select {config.select}: keeps none of the samples of {what}")
    log(f"--select {config.select}: training on {len(kept)} of {len(refs)} samples of {what}")
    return kept


def _make_split(config: TrainConfig, index: ShardIndex, selection: Selection | None, env: Distributed,
                log: Log) -> str | None:
    """No split anywhere: split by source into the run folder (train/val/test ≈ 80/10/10)."""
    n = len(index.sources)
    if n < 2:
        log(f"note: {config.data} has one source; training on it all, no held-out split "
            "(eval-reference will need data from other sources)")
        return None
    val, test = (0.1, 0.1) if n >= 3 else (0.0, 0.5)
    path = Path(config.out) / SPLIT_FILE
    if env.main:
        make_split(config.data, val=val, test=test, seed=config.seed, out=path, select=selection)
    env.barrier()
    doc = load_split(path)
    log(f"split by source into {path} (train {len(doc['sources']['train'])}, val "
        f"{len(doc['sources']['val'])}, test {len(doc['sources']['test'])} sources); "
        "eval-reference uses it")
    return str(path)


# ------------------------------------------------------------------ data
def build_datasets(task: ModelTask, index: ShardIndex, model: torch.nn.Module, config: TrainConfig,
                   train_refs: list[SampleRef], val_refs: list[SampleRef]):
    """The model's training dataset, and its validation dataset (None without validation samples)."""
    dataset = task.dataset(index, train_refs, model=model, clip_len=config.clip_len,
                           patch=config.patch, augment=True, flip=config.flip, seed=config.seed)
    val_dataset = None
    if val_refs and config.val_samples:
        # A seeded draw across the held-out sources, not the first samples in index order.
        pick = sample_across_sources(val_refs, config.val_samples, config.seed)
        val_dataset = task.dataset(index, pick, model=model, clip_len=None, patch=None, augment=False,
                                   flip=False, seed=config.seed)
    return dataset, val_dataset


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


def check_memory(task: ModelTask, model: torch.nn.Module, dataset, config: TrainConfig, device: str) -> None:
    """Refuse a --batch whose step cannot fit in memory, with the estimate (issue: --batch 100000)."""
    batch = config.batch
    item = dataset[(0, 0)]
    item_bytes = sum(4 * v.numel() for v in item.values() if torch.is_tensor(v))  # as float32
    available = _available_memory(device)
    if available is None or 8 * batch * item_bytes < available / 4:
        return  # far from the limit: not worth a measurement
    per_item = item_bytes + _activation_bytes(task, model, item, config)
    need = batch * per_item
    if need > available:
        gib = 2 ** 30
        raise BlursynthError(
            f"--batch {batch}: one training step needs about {need / gib:.1f} GiB "
            f"({per_item / 2 ** 20:.1f} MiB per sample at --patch {config.patch} "
            f"--clip-len {config.clip_len}), more than the {available / gib:.1f} GiB available "
            f"on {device}; use a smaller --batch or --patch")


def make_loader(dataset, config: TrainConfig, env: Distributed, start: int):
    """The DataLoader of the sample stream from ``start`` (the data a step sees depends on (seed, step))."""
    from torch.utils.data import DataLoader

    sampler = StreamSampler(len(dataset), config.seed, start=start * config.batch * env.world,
                            rank=env.rank, world=env.world)
    return DataLoader(dataset, batch_size=config.batch, sampler=sampler, num_workers=config.workers,
                      worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(config.seed),
                      pin_memory=env.device.startswith("cuda"), persistent_workers=False,
                      prefetch_factor=2 if config.workers else None)


def steps_per_epoch(dataset, config: TrainConfig, env: Distributed) -> int:
    """Steps to see every training sample once (the paper schedules count epochs)."""
    return math.ceil(len(dataset) / (config.batch * env.world))


# ------------------------------------------------------- model, optimizer
def build_optimizer(model: torch.nn.Module, config: TrainConfig, device: str):
    """Move the model to ``device``; Adam, and the EMA of its weights when ``config.ema``.

    Returns
    -------
    optimizer : torch.optim.Adam
    ema : torch.optim.swa_utils.AveragedModel or None
    """
    model.to(device)
    # NHWC convolutions: faster on GPUs and, with oneDNN, on the CPU (docs/benchmarks.md)
    model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    ema = None
    if config.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
    return optimizer, ema


def restore(ckpt: dict, model: torch.nn.Module, optimizer, ema, out: Path, env: Distributed, log: Log) -> None:
    """Resume: weights, EMA, optimizer and RNG state from ``ckpt``; log lines past its step dropped."""
    start = int(ckpt["step"])
    # with an EMA, "state_dict" holds the averaged weights and "train_state_dict" the trained ones
    model.load_state_dict(ckpt.get("train_state_dict", ckpt["state_dict"]))
    if ema is not None:
        ema.module.load_state_dict(ckpt["state_dict"])
        ema.n_averaged.fill_(start)
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if env.main:
        _trim_log(out / LOG, start)
    log(f"resuming {out} at step {start}")


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


def wrap_model(model: torch.nn.Module, config: TrainConfig, env: Distributed) -> torch.nn.Module:
    """The module the loss runs: ``model``, under DDP when several ranks train, compiled with ``config.compile``."""
    wrapped = model
    if env.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        # static_graph copes with parameters the forward leaves out (F_n of the last
        # step of a clip) that a weight penalty computed outside the forward reaches.
        wrapped = DistributedDataParallel(
            model, device_ids=[torch.device(env.device).index] if env.device.startswith("cuda") else None,
            static_graph=True)
    if config.compile:
        wrapped = torch.compile(wrapped)
    return wrapped


def write_config(config: TrainConfig, out: Path, env: Distributed) -> None:
    """``config.json``: the resolved config of the run (rank 0)."""
    if env.main:
        atomic_write_bytes(out / CONFIG, (json.dumps(config.to_json(), indent=1) + "\n").encode())


# ---------------------------------------------------------- paths
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
    """Fill ``data`` (the built-in sample dataset of the data form the model learns from) and ``out``
    (``runs/<model>``)."""
    from reference_models.sample_data import sample_dataset

    log = log or (lambda msg: None if config.quiet else print(msg, file=sys.stderr))
    changes = {}
    if config.data is None:
        form = task_of(build_model(config.model, config.model_args)).learns_from
        changes["data"] = str(sample_dataset(form, log))
    if config.out is None:
        changes["out"] = str(default_run_folder(config.model, config.resume))
        log(f"run folder: {changes['out']} (pass --out to choose)")
    return dataclasses.replace(config, **changes) if changes else config


def agree_on_paths(config: TrainConfig, env: Distributed) -> TrainConfig:
    """Rank 0 resolves the dataset and run folder (:func:`resolve_paths`); every rank takes its choice."""
    if env.main:
        config = resolve_paths(config)
    if env.world > 1:  # every rank must agree on the data and the run folder
        box = [config.data, config.out]
        dist.broadcast_object_list(box, src=0)
        config = dataclasses.replace(config, data=box[0], out=box[1])
    return config
