"""The training loop shared by every reference model.

``train(TrainConfig(...))`` trains a registered model on a blursynth dataset.
The loop (:meth:`Trainer.fit`) is short and hands its work to named steps of
:class:`Trainer` (BasicSR's ``train.py``/``base_model.py`` are the model):
feed data, update the learning rate, optimize, update the EMA, log, validate,
save. Three modules hold the rest: :mod:`.train_config` (the config, presets
and learning-rate schedules), :mod:`.train_setup` (run folder, resume
identity, split, data, memory check, model and optimizer, each a function) and
:mod:`.train_control` (signals, time budget, the stop vote across DDP ranks,
progress). What is specific to a model — its dataset, loss, learning-rate
schedule, scoring and the paper's settings — comes from its
:class:`~reference_models.task.ModelTask`, so adding a model never edits
these files.

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
checkpoint and stops (:class:`~reference_models.train_control.Interrupted`),
so ``--resume`` loses nothing.

Multi-GPU: launched by ``torchrun --nproc_per_node G``, each process trains on
its own device under DistributedDataParallel (:mod:`.runtime`); rank r takes
stream positions r, r+G, … so G processes with batch b see what one process
with batch G·b sees.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from pathlib import Path

import torch

from blursynth.curate.selection import load_selection
from blursynth.dataset.outdir import output_folder
from reference_models.checkpoint import (  # noqa: F401  (load_checkpoint: re-exported)
    CHECKPOINT, CHECKPOINT_FORMAT, WEIGHTS, build_model, load_checkpoint, save_checkpoint,
)
from reference_models.curves import plot_training
from reference_models.data import ShardIndex
from reference_models.evaluate import evaluate_model
from reference_models.runtime import Distributed, autocast
from reference_models.task import task_of
from reference_models import train_setup as setup
from reference_models.train_config import (  # noqa: F401  (LR_FLOOR: re-exported)
    LR_FLOOR, TrainConfig, learning_rate, resolve_defaults,
)
from reference_models.train_control import Interrupted, TrainControl, check_finite
from reference_models.train_setup import CONFIG, LOG, default_run_folder, resolve_paths  # noqa: F401

__all__ = ["CONFIG", "LOG", "Interrupted", "TrainConfig", "Trainer", "default_run_folder", "resolve_defaults",
           "resolve_paths", "train"]


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


class Trainer:
    """One training run: the set-up of :mod:`.train_setup` in order, then named steps; :meth:`fit` is the loop.

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
        self.env, self.quiet, self.device, self.out = env, config.quiet, env.device, Path(config.out)
        self.ckpt_step: int | None = None
        self.task = task_of(build_model(config.model, {}))  # the class's task: the preset's sizes come next
        config = resolve_defaults(config, self.task)
        torch.manual_seed(config.seed)  # the model is initialized from the seed, the same on every rank
        self.model = build_model(config.model, config.model_args)
        self.requested = config.to_json()
        self.ckpt = setup.open_run_folder(config, self.requested, env, self.log)
        self.index = ShardIndex(config.data)
        self.selection = load_selection(config.select, config.data) if config.select is not None else None
        config = setup.fit_sizes(config, self.index, self.task, self.ckpt, self.log)
        self.config, self.split_doc, self.train_refs, self.val_refs = setup.split_samples(
            config, self.index, self.selection, env, self.log)
        self.dataset, self.val_dataset = setup.build_datasets(
            self.task, self.index, self.model, self.config, self.train_refs, self.val_refs)
        setup.check_memory(self.task, self.model, self.dataset, self.config, self.device)
        self.steps_per_epoch = setup.steps_per_epoch(self.dataset, self.config, env)
        self.start = int(self.ckpt["step"]) if self.ckpt else 0
        self.loader = setup.make_loader(self.dataset, self.config, env, self.start)
        self.optimizer, self.ema = setup.build_optimizer(self.model, self.config, self.device)
        if self.ckpt is not None:
            setup.restore(self.ckpt, self.model, self.optimizer, self.ema, self.out, env, self.log)
        self.wrapped = setup.wrap_model(self.model, self.config, env)
        setup.write_config(self.config, self.out, env)
        self.metrics = dict(self.ckpt.get("metrics", {})) if self.ckpt else {}
        self.window: dict[str, float] = {}
        self.window_steps = 0
        self.last_record: dict | None = None
        self.t0 = time.monotonic()

    def log(self, msg: str) -> None:
        """A note on stderr (rank 0, unless quiet)."""
        if self.env.main and not self.quiet:
            from tqdm.auto import tqdm
            tqdm.write(msg, file=sys.stderr)  # on its own line, above a progress bar

    # ----------------------------------------------------------- loop steps
    def feed_data(self, batch: dict) -> dict:
        """The batch on the run's device."""
        return {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    @property
    def scored_model(self) -> torch.nn.Module:
        """The weights that validation scores and ``model.pt`` holds: the EMA when there is one."""
        return self.model if self.ema is None else self.ema.module

    def update_learning_rate(self, step: int) -> float:
        """Set the learning rate of ``step`` (0-based, :func:`learning_rate`) and return it."""
        lr = learning_rate(self.config, self.task, step, self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def optimize(self, batch: dict, step: int) -> None:
        """One optimizer step on the task's loss; a loss that is not finite on any rank stops the run."""
        with autocast(self.device, self.config.amp):
            loss, terms = self.task.loss(self.wrapped, batch, self.config)
        value = float(loss.detach())
        check_finite(self.env, value, step, self.ckpt_step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        for k, v in {"loss": value, **terms}.items():
            self.window[k] = self.window.get(k, 0.0) + float(v)
        self.window_steps += 1

    def update_ema(self) -> None:
        """Move the moving average of the weights (with ``ema`` > 0) towards the weights just trained."""
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def log_step(self, step: int, lr: float) -> None:
        """One ``log.jsonl`` line: the loss and its terms averaged since the last line, the lr, the time."""
        record = {"step": step, **{k: v / self.window_steps for k, v in self.window.items()}, "lr": lr,
                  "elapsed_s": round(time.monotonic() - self.t0, 3)}
        self.window, self.window_steps = {}, 0
        self.last_record = record
        self.metrics["loss"] = record["loss"]
        if self.env.main:
            _append_log(self.out / LOG, record)

    def validate(self, step: int) -> None:
        """Score the scored weights on the validation samples (rank 0); a ``log.jsonl`` line and a note."""
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
        """``checkpoint.pt`` (to resume from) and ``model.pt`` (to ship) at ``step`` (rank 0)."""
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

    def plot_curves(self) -> None:
        """``curves.png`` from the log so far (rank 0)."""
        if self.env.main and (self.out / LOG).exists():
            plot_training(self.out)

    def result(self, step: int) -> dict:
        """What :func:`train` returns (see there)."""
        loss = self.last_record["loss"] if self.last_record else self.metrics.get("loss", math.nan)
        return {"step": step, "loss": loss, "val_psnr": self.metrics.get("val_psnr"),
                "val_psnr_input": self.metrics.get("val_psnr_input"),
                "elapsed_s": time.monotonic() - self.t0, "run": str(self.out),
                "n_train": len(self.train_refs), "n_val": len(self.val_refs)}

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        """Train from the start (or checkpoint) step to ``config.steps``; return the final metrics.

        When to stop (a signal, the time budget, every rank's vote) and the
        progress shown are :class:`~reference_models.train_control.TrainControl`'s.
        """
        config, step = self.config, self.start
        control = TrainControl(config, self.env, self.start, self.t0, self.log)
        self.ckpt_step = self.start if self.ckpt else None
        if step >= config.steps:
            self.log(f"the run in {self.out} is at step {step} >= --steps {config.steps}; nothing to do")
        self.model.train()
        batches = iter(self.loader)
        with control.between_steps(batches):
            while step < config.steps:
                batch = control.next_batch(batches)
                if batch is None:
                    break  # a DataLoader worker ended by the same Ctrl-C
                batch = self.feed_data(batch)
                lr = self.update_learning_rate(step)
                self.optimize(batch, step)
                self.update_ema()
                step += 1
                stop = control.step_done(step)  # the same on every rank
                final = step == config.steps or stop
                if step % config.log_every == 0 or final:
                    self.log_step(step, lr)
                    control.show_loss(self.last_record["loss"])
                if step % config.val_every == 0 or (final and not control.interrupted):
                    self.validate(step)
                if step % config.ckpt_every == 0 or final:
                    self.save(step)
                    self.env.barrier()
                if stop:
                    break
            if control.interrupted:
                if self.ckpt_step != step:
                    self.save(step)
                self.plot_curves()  # the curves so far, beside the checkpoint
                raise control.interruption(step, self.out)
            control.note_budget_end(step)
        if self.ckpt_step is None and self.env.main:
            self.save(step)
        self.plot_curves()
        return self.result(step)


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
        config = setup.agree_on_paths(config, env)
        # The run folder is locked for the whole run (a second run on it stops in one
        # line); one that this call made is removed again if an error leaves it empty.
        with output_folder(config.out) if env.main else contextlib.nullcontext():
            return Trainer(config, env).fit()
