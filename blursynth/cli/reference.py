"""Reference models: ``train-reference``, ``eval-reference``, ``split``, ``validate``.

Thin commands: options become a :class:`reference_models.train.TrainConfig` or
function arguments and the library does the work. torch is imported only when a
command runs, so ``blursynth --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from blursynth.cli.root import main
from blursynth.cli.common import recipe_option

_DATA = click.Path(exists=True, file_okay=False, path_type=Path)


def _model_names() -> list[str]:
    from reference_models import list_models
    return list_models()


def _model_args(blocks: int | None, width: int | None) -> dict:
    args = {}
    if blocks is not None:
        args["blocks"] = blocks
    if width is not None:
        args["width"] = width
    return args


def training_options(func):
    """Options shared by ``train-reference`` and ``validate``."""
    decorators = [
        click.option("--batch", type=int, default=8, show_default=True, help="Clips per step (per process)."),
        click.option("--patch", type=int, default=128, show_default=True,
                     help="Random crop size (same place in every frame); shrunk to small frames."),
        click.option("--clip-len", type=int, default=13, show_default=True,
                     help="Frames per training clip; shrunk to shorter sequences."),
        click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate."),
        click.option("--lr-decay", type=float, default=0.96, show_default=True,
                     help="Learning-rate factor every --lr-decay-every steps."),
        click.option("--lr-decay-every", type=int, default=10_000, show_default=True),
        click.option("--weight-reg", type=float, default=1e-5, show_default=True,
                     help="λ of the L2 weight regularization."),
        click.option("--blocks", type=int, default=None, help="Residual blocks per encoder/decoder (paper: 4)."),
        click.option("--width", type=int, default=None, help="Channels of the residual blocks (paper: 64)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--amp", type=click.Choice(["none", "bf16"]), default="none", show_default=True,
                     help="Mixed precision (bf16 autocast)."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the model."),
        click.option("--workers", type=int, default=2, show_default=True, help="DataLoader workers."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@main.command("train-reference")
@click.argument("model")
@recipe_option
@click.option("--data", required=True, type=_DATA, help="Dataset folder (manifest.json + shards).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run folder.")
@click.option("--steps", type=int, default=10_000, show_default=True, help="Training steps (paper: 300k).")
@training_options
@click.option("--split-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Train on its train split, validate on its val split [default: DATA/split.json if present].")
@click.option("--val-every", type=int, default=1000, show_default=True, help="Steps between validations.")
@click.option("--val-samples", type=int, default=8, show_default=True, help="Validation samples scored.")
@click.option("--val-crop", type=int, default=256, show_default=True, help="Validation centre crop.")
@click.option("--log-every", type=int, default=20, show_default=True, help="Steps between log lines.")
@click.option("--ckpt-every", type=int, default=500, show_default=True, help="Steps between checkpoints.")
@click.option("--time-budget", type=float, default=None, help="Stop after this many minutes.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
def train_reference(model, data, out, blocks, width, compile_, time_budget, **kw):
    """Train a reference MODEL (dtb, strcnn, cnn) on a dataset.

    \b
    Writes OUT/checkpoint.pt, OUT/model.pt, OUT/log.jsonl, OUT/config.json.
    Multi-GPU: torchrun --nproc_per_node G $(which blursynth) train-reference ...
    """
    from blursynth.errors import BlursynthError
    from reference_models import is_model
    from reference_models.train import TrainConfig, train

    if not is_model(model):
        raise BlursynthError(f"model {model!r} is unknown; choose one of {', '.join(_model_names())}")
    config = TrainConfig(data=str(data), out=str(out), model=model, model_args=_model_args(blocks, width),
                         compile=compile_, time_budget_s=None if time_budget is None else time_budget * 60.0,
                         **kw)
    result = train(config)
    if not config.quiet:
        msg = f"step {result['step']}: loss {result['loss']:.5f}"
        if result["val_psnr"] is not None:
            msg += f", val PSNR {result['val_psnr']:.2f} dB (input {result['val_psnr_input']:.2f} dB)"
        click.echo(f"{msg} -> {out}", err=True)


@main.command("eval-reference")
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.option("--data", required=True, type=_DATA, help="Dataset folder.")
@click.option("--split", default="test", show_default=True, help="Split to score (train, val, test or all).")
@click.option("--split-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Split file [default: DATA/split.json].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Report file [default: RUN/eval-SPLIT.json].")
@click.option("--device", default="auto", show_default=True)
@click.option("--amp", type=click.Choice(["none", "bf16"]), default="none", show_default=True)
@click.option("--crop", type=int, default=None, help="Score a centre crop of this size.")
@click.option("--max-samples", type=int, default=None, help="Score at most this many samples.")
@click.option("--quiet", "-q", is_flag=True)
def eval_reference(run, data, split, split_file, out, device, amp, crop, max_samples, quiet):
    """Score the model of RUN on DATA: PSNR and SSIM of its output and of the blurry input."""
    from reference_models.evaluate import evaluate

    report = evaluate(run, data, split=split, split_file=split_file, device=device, amp=amp, crop=crop,
                      max_samples=max_samples, out=out, progress=not quiet)
    click.echo(json.dumps({k: report[k] for k in ("model", "step", "split", "n_samples", "n_frames",
                                                   "psnr", "ssim")}, indent=1))
    if not quiet:
        click.echo(f"report -> {report['out']}", err=True)


@main.command("split")
@click.argument("dataset", type=_DATA)
@click.option("--val", type=float, default=0.1, show_default=True, help="Fraction of samples for validation.")
@click.option("--test", type=float, default=0.1, show_default=True, help="Fraction of samples for testing.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Split file [default: DATASET/split.json].")
def split(dataset, val, test, seed, out):
    """Split DATASET by source (clip or panorama) into train/val/test; no data is copied."""
    from reference_models.split import load_split, make_split

    path = make_split(dataset, val=val, test=test, seed=seed, out=out)
    doc = load_split(path)
    parts = ", ".join(f"{k} {doc['n_samples'][k]} samples / {len(v)} sources" for k, v in doc["sources"].items())
    click.echo(f"{parts} -> {path}", err=True)


@main.command("validate")
@click.argument("dataset", type=_DATA)
@recipe_option
@click.option("--model", default="dtb", show_default=True, help="Reference model to train.")
@click.option("--budget", type=float, default=10.0, show_default=True, help="Training time in minutes.")
@click.option("--test", type=float, default=0.2, show_default=True, help="Held-out fraction (by source).")
@click.option("--min-gain", type=float, default=0.1, show_default=True,
              help="PSNR gain (dB) over the blurry input that counts as teaching.")
@click.option("--max-test-samples", type=int, default=32, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the run (split, checkpoint, log, eval) here [default: a temporary folder].")
@training_options
def validate(dataset, model, budget, test, min_gain, max_test_samples, out, blocks, width, compile_, **kw):
    """Check that DATASET teaches MODEL to deblur: split by source, train for --budget
    minutes, report the PSNR gain on held-out sources and a verdict.

    Exit status 0 either way; the verdict is on the last line.
    """
    from blursynth.errors import BlursynthError
    from reference_models import is_model
    from reference_models.validate import validate_dataset

    if not is_model(model):
        raise BlursynthError(f"--model {model}: unknown; choose one of {', '.join(_model_names())}")
    if budget <= 0:
        raise BlursynthError(f"--budget {budget}: must be positive (minutes)")
    verdict = validate_dataset(dataset, model=model, budget_minutes=budget, out=out, test=test,
                               min_gain=min_gain, max_test_samples=max_test_samples,
                               model_args=_model_args(blocks, width), compile=compile_, **kw)
    click.echo(verdict.message(str(dataset), model))
