"""The training loop shared by every reference model.

``train(TrainConfig(...))`` trains a registered model on a blursynth dataset and
writes into the run folder:

* ``checkpoint.pt`` — state dict, config, step, optimizer state, RNG state and
  the last metrics, written atomically (temporary file + ``os.replace``); it
  holds only tensors and JSON-able values, so ``torch.load(weights_only=True)``
  loads it;
* ``model.pt`` — the same without the optimizer (the file to ship);
* ``log.jsonl`` — one JSON object per logged step (loss, lr) and per
  validation (PSNR of the output and of the blurry input);
* ``config.json`` — the resolved config;
* ``curves.png`` — training loss and validation PSNR (output vs blurry input).

Defaults follow Kim et al. 2017, Sec. 5.2–5.3: MSE loss plus λ = 1e-5 times the
squared L2 norm of the weights, 13-frame clips, 128×128 patches, batch 8, Adam
with lr 1e-4 decayed ×0.96 every 10k steps.

Determinism and resume (on the CPU): the model is initialized from the seed,
the data a step sees depends on (seed, step) only (:class:`StreamSampler`), the
learning rate is a function of the step, and the checkpoint carries the
optimizer state, so ``resume=True`` continues bit for bit where the last
checkpoint left off: N steps straight and N/2 + N/2 resumed give identical
weights. (On a GPU, cuDNN's kernel choice makes runs close, not identical.)

Multi-GPU: launched by ``torchrun --nproc_per_node G``, each process trains on
its own device under DistributedDataParallel (NCCL on CUDA, gloo on CPU); rank
r takes stream positions r, r+G, … so G processes with batch b see what one
process with batch G·b sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from blursynth.errors import BlursynthError
from blursynth.shards import atomic_write_bytes
from reference_models.curves import plot_training

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.pt"
LOG = "log.jsonl"
CONFIG = "config.json"
CHECKPOINT_FORMAT = "blursynth-reference/1"

# Config fields a resumed run must share with the run it continues.
_IDENTITY = ("model", "model_args", "split_file", "batch", "patch", "clip_len", "lr",
             "lr_decay", "lr_decay_every", "weight_reg", "seed", "amp", "flip")


@dataclass
class TrainConfig:
    """Everything that defines a training run (JSON-able: it is stored in checkpoints)."""

    data: str
    out: str
    model: str = "dtb"
    model_args: dict = field(default_factory=dict)
    steps: int = 10_000
    batch: int = 8
    patch: int | None = 128
    clip_len: int | None = 13
    lr: float = 1e-4
    lr_decay: float = 0.96
    lr_decay_every: int = 10_000
    weight_reg: float = 1e-5
    flip: bool = True
    seed: int = 0
    split_file: str | None = None
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
        checks = {"steps": self.steps >= 1, "batch": self.batch >= 1, "lr": self.lr > 0,
                  "lr_decay": 0 < self.lr_decay <= 1, "lr_decay_every": self.lr_decay_every >= 1,
                  "weight_reg": self.weight_reg >= 0, "workers": self.workers >= 0,
                  "log_every": self.log_every >= 1, "val_every": self.val_every >= 1,
                  "ckpt_every": self.ckpt_every >= 1, "val_samples": self.val_samples >= 0,
                  "patch": self.patch is None or self.patch >= 8,
                  "clip_len": self.clip_len is None or self.clip_len >= 1}
        for name, ok in checks.items():
            if not ok:
                raise BlursynthError(f"--{name.replace('_', '-')} {getattr(self, name)}: out of range")
        if self.amp not in ("none", "bf16"):
            raise BlursynthError(f"--amp {self.amp}: expected none or bf16")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise BlursynthError(f"--device {self.device}: expected auto, cpu or cuda")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def learning_rate(config: TrainConfig, step: int) -> float:
    """Staircase decay (Sec. 5.3): lr · decay^⌊step / every⌋."""
    return config.lr * config.lr_decay ** (step // config.lr_decay_every)


def weight_penalty(model: torch.nn.Module) -> torch.Tensor:
    """Σ ||W||² over the weight tensors (biases and β excluded)."""
    return sum(p.pow(2).sum() for n, p in model.named_parameters() if p.ndim > 1)


# ------------------------------------------------------------------ devices
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, device_id=torch.device(device) if backend == "nccl" else None)
    return _Dist(rank, world, local)


def resolve_device(device: str, local_rank: int = 0) -> str:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BlursynthError("--device cuda: no CUDA device is available (use --device cpu)")
        if device == "cuda":
            device = f"cuda:{local_rank}"
    return device


def autocast(device: str, amp: str):
    """bf16 autocast on the device's type (a no-op context for ``amp='none'``)."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


# -------------------------------------------------------------- checkpoints
def save_checkpoint(path: Path, payload: dict) -> None:
    """``torch.save`` through a temporary file and ``os.replace``."""
    import io
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint or weights file with ``weights_only=True``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT if (path / CHECKPOINT).exists() else path / WEIGHTS
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BlursynthError(f"{path}: no checkpoint (train first with 'blursynth train-reference')") from None
    except Exception as exc:  # corrupt or foreign file
        raise BlursynthError(f"{path}: not a loadable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise BlursynthError(f"{path}: not a blursynth reference-model checkpoint")
    return ckpt


def build_model(name: str, model_args: dict) -> torch.nn.Module:
    from reference_models import create_model
    try:
        return create_model(name, **model_args)
    except (TypeError, ValueError) as exc:
        raise BlursynthError(f"model {name!r}: {exc}") from None


def model_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a run folder or checkpoint file; returns (model in eval mode, checkpoint)."""
    ckpt = load_checkpoint(path)
    model = build_model(ckpt["model"], ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt


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


def _resolve_sizes(config: TrainConfig, index, log) -> TrainConfig:
    """Fit the default patch and clip length to small datasets (explicitly, with a note)."""
    changes = {}
    if config.patch is not None and config.patch > min(index.height, index.width):
        size = min(index.height, index.width)
        changes["patch"] = size
        log(f"note: --patch {config.patch} is larger than the {index.width}x{index.height} frames; using {size}")
    if config.clip_len is not None and config.clip_len > index.seq_len:
        changes["clip_len"] = index.seq_len
        log(f"note: --clip-len {config.clip_len} is longer than the {index.seq_len}-frame sequences; "
            f"using {index.seq_len}")
    return dataclasses.replace(config, **changes) if changes else config


def _split_refs(config: TrainConfig, index, log):
    """Training and validation samples: the split file's train/val, or everything (no validation)."""
    from reference_models.split import default_split_file, load_split

    path = config.split_file
    if path is None and default_split_file(config.data).exists():
        path = str(default_split_file(config.data))
        log(f"using the split {path}")
    if path is None:
        log("no split file: training on every sample, no validation "
            "(make one with 'blursynth split DATASET')")
        return index.select(None), [], None
    doc = load_split(path, config.data)
    train = index.select(doc["sources"]["train"])
    val = index.select(doc["sources"].get("val") or [])
    if not train:
        raise BlursynthError(f"{path}: the train split is empty")
    return train, val, path


# -------------------------------------------------------------------- train
def train(config: TrainConfig) -> dict:
    """Train ``config.model`` on ``config.data``; return the final metrics.

    Returns:
        ``{"step", "loss", "val_psnr", "val_psnr_input", "elapsed_s", "run"}``.
    """
    from torch.utils.data import DataLoader

    from reference_models.data import ShardIndex, StreamSampler, seed_worker
    from reference_models.evaluate import evaluate_model
    from reference_models.tasks import task_of

    out = Path(config.out)
    requested = config.to_json()
    env_dist = _init_distributed(resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0"))))
    device = resolve_device(config.device, env_dist.local_rank)
    is_main = env_dist.main

    def log(msg: str) -> None:
        if is_main and not config.quiet:
            print(msg, file=sys.stderr)

    # ---- run folder and resume
    ckpt = None
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    if (out / CHECKPOINT).exists():
        if not config.resume:
            raise BlursynthError(f"--out {out}: holds a run already; pass --resume to continue it "
                                 "or choose another --out")
        ckpt = load_checkpoint(out / CHECKPOINT)
        old = ckpt["requested"]
        differ = [k for k in _IDENTITY if old.get(k) != requested.get(k)]
        if differ:
            raise BlursynthError(f"--resume: {', '.join('--' + k.replace('_', '-') for k in differ)} "
                                 f"differ from the run in {out}; use the same values or another --out")
    elif config.resume:
        log(f"--resume: no checkpoint in {out}; starting a new run")

    # ---- data
    index = ShardIndex(config.data)
    fingerprint = index.manifest.fingerprint
    if ckpt is None:
        config = _resolve_sizes(config, index, log)
    else:  # the stored run already resolved these
        if ckpt["dataset_fingerprint"] != fingerprint:
            raise BlursynthError(f"--resume: {config.data} is not the dataset the run in {out} trained on")
        stored = ckpt["config"]
        config = dataclasses.replace(config, patch=stored["patch"], clip_len=stored["clip_len"],
                                     split_file=stored["split_file"])
    train_refs, val_refs, split_path = _split_refs(config, index, log)
    if split_path is not None and config.split_file is None:
        config = dataclasses.replace(config, split_file=split_path)

    # ---- model (initialized from the seed, identically on every rank)
    torch.manual_seed(config.seed)
    model = build_model(config.model, config.model_args)
    task = task_of(model)
    dataset = task.make_dataset(index, train_refs, model=model, clip_len=config.clip_len,
                                patch=config.patch, augment=True, seed=config.seed)
    val_dataset = None
    if val_refs and config.val_samples:
        val_dataset = task.make_dataset(index, val_refs[:config.val_samples], model=model, clip_len=None,
                                        patch=None, augment=False, seed=config.seed)
    model.to(device)
    if device.startswith("cuda"):
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    start = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        start = int(ckpt["step"])
        if is_main:
            _trim_log(out / LOG, start)
        log(f"resuming {out} at step {start}")
    if start >= config.steps:
        log(f"the run in {out} is at step {start} >= --steps {config.steps}; nothing to do")
    if is_main:
        atomic_write_bytes(out / CONFIG, (json.dumps(config.to_json(), indent=1) + "\n").encode())

    wrapped = model
    if env_dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        # The graph is the same every step (fixed clip length). static_graph also copes with
        # parameters the forward leaves out (F_n of the last step of a one-step clip) that
        # the weight penalty, computed outside the forward, still reaches.
        wrapped = DistributedDataParallel(
            model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None,
            static_graph=True)
    if config.compile:
        wrapped = torch.compile(wrapped)

    sampler = StreamSampler(len(dataset), config.seed, start=start * config.batch * env_dist.world,
                            rank=env_dist.rank, world=env_dist.world)
    loader = DataLoader(dataset, batch_size=config.batch, sampler=sampler, num_workers=config.workers,
                        worker_init_fn=seed_worker,
                        generator=torch.Generator().manual_seed(config.seed),
                        pin_memory=device.startswith("cuda"), persistent_workers=False,
                        prefetch_factor=2 if config.workers else None)

    metrics = dict(ckpt.get("metrics", {})) if ckpt else {}

    def checkpoint(step: int) -> None:
        if not is_main:
            return
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        base = {"format": CHECKPOINT_FORMAT, "model": config.model, "model_args": config.model_args,
                "config": config.to_json(), "requested": requested,
                "dataset_fingerprint": fingerprint, "step": step, "state_dict": state, "metrics": metrics}
        save_checkpoint(out / CHECKPOINT, {**base, "optimizer": optimizer.state_dict(),
                                           "rng": {"torch": torch.get_rng_state()}})
        save_checkpoint(out / WEIGHTS, base)

    def validate(step: int) -> None:
        if val_dataset is None or not is_main:
            return
        res = evaluate_model(model, val_dataset, device=device, amp=config.amp, crop=config.val_crop)
        model.train()
        metrics.update(val_psnr=res["psnr"]["output"], val_psnr_input=res["psnr"]["input"])
        _append_log(out / LOG, {"step": step, "val_psnr": res["psnr"]["output"],
                                "val_psnr_input": res["psnr"]["input"], "val_ssim": res["ssim"]["output"],
                                "val_ssim_input": res["ssim"]["input"]})
        log(f"step {step}: val PSNR {res['psnr']['output']:.2f} dB (input {res['psnr']['input']:.2f} dB)")

    from tqdm.auto import tqdm
    # Under a time budget the step count is not what ends the run: no step total, no
    # meaningless ETA; the description says the budget instead.
    budgeted = config.time_budget_s is not None
    bar = tqdm(total=None if budgeted else config.steps, initial=start, unit="step",
               desc=f"{config.model} ({config.time_budget_s:.0f} s budget)" if budgeted else config.model,
               file=sys.stderr,
               disable=config.quiet or not is_main, dynamic_ncols=True)
    t0 = time.monotonic()
    step = start
    stop = torch.zeros((), dtype=torch.int32, device=device if env_dist.world > 1 else "cpu")
    model.train()
    try:
        batches = iter(loader)
        running = 0.0
        while step < config.steps:
            batch = next(batches)
            batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, step)
            with autocast(device, config.amp):
                output, target, _ = task.outputs(wrapped, batch, True)
            mse = F.mse_loss(output.float(), target)
            loss = mse + config.weight_reg * weight_penalty(model) if config.weight_reg else mse
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            running += float(mse.detach())
            metrics["loss"] = float(mse.detach())
            bar.update(1)
            if step % config.log_every == 0 or step == config.steps:
                n = config.log_every if step % config.log_every == 0 else (step - start) % config.log_every or 1
                record = {"step": step, "loss": running / n, "lr": learning_rate(config, step - 1),
                          "elapsed_s": round(time.monotonic() - t0, 3)}
                running = 0.0
                if is_main:
                    _append_log(out / LOG, record)
                bar.set_postfix(loss=f"{record['loss']:.5f}")
            if config.time_budget_s is not None:
                stop.fill_(int(time.monotonic() - t0 >= config.time_budget_s))
                if env_dist.world > 1:
                    dist.all_reduce(stop, op=dist.ReduceOp.MAX)
            final = step == config.steps or bool(stop)
            if step % config.val_every == 0 or final:
                validate(step)
            if step % config.ckpt_every == 0 or final:
                checkpoint(step)
            if env_dist.world > 1 and (step % config.ckpt_every == 0 or final):
                dist.barrier()
            if bool(stop):
                log(f"time budget of {config.time_budget_s:.0f} s reached at step {step}")
                break
    finally:
        bar.close()
        if env_dist.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    if step == start and is_main and not (out / CHECKPOINT).exists():
        checkpoint(step)
    if is_main and (out / LOG).exists():
        plot_training(out)
    return {"step": step, "loss": metrics.get("loss", math.nan), "val_psnr": metrics.get("val_psnr"),
            "val_psnr_input": metrics.get("val_psnr_input"),
            "elapsed_s": time.monotonic() - t0, "run": str(out)}
