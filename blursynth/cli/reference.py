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


def parse_model_args(items, recipe: dict | None = None) -> dict:
    """``key=value`` strings (value parsed as JSON, else kept as a string) over a recipe's ``[model]`` table."""
    from blursynth.errors import BlursynthError

    args = dict(recipe or {})
    for item in items or ():
        key, sep, value = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise BlursynthError(f"--model-arg {item}: expected KEY=VALUE, e.g. --model-arg blocks=2")
        try:
            args[key] = json.loads(value)
        except ValueError:
            args[key] = value
    return args


def _recipe_model_args(ctx: click.Context) -> dict:
    return (ctx.meta.get("blursynth.recipe_tables") or {}).get("model", {})


_FROM_MODEL = "the model's paper value"


def _families() -> list:
    """(name, task) of the model that stands for each registered family (its task's validator)."""
    from reference_models import list_models, task_for

    return [(name, task_for(name)) for name in list_models() if task_for(name).validator == name]


def paper_values(field: str) -> str:
    """``"Paper values: dtb 0.96; fsta 0.5."``: each model family's ``ModelTask.defaults[field]``,
    read from the registry (models whose value is the same share one entry)."""
    by_value: dict[str, list[str]] = {}
    for name, task in _families():
        if field in task.defaults:
            by_value.setdefault(f"{task.defaults[field]:g}" if isinstance(task.defaults[field], float)
                                else str(task.defaults[field]), []).append(name)
    if not by_value:
        return ""
    return "Paper values: " + "; ".join(f"{', '.join(names)} {value}" for value, names in by_value.items()) + "."


def inference_lines() -> str:
    """One line per registered model family: how ``deblur`` runs it (its task's inference)."""
    how = {"online": "online over the frame sequence, frame by frame with its recurrent state",
           "window": "on the frames around each frame",
           "image": "on each frame alone"}
    return "\n".join(f"{name}: {how[task.inference]}" for name, task in _families())


def validate_choice() -> str:
    """Which model ``validate`` picks for each data form, from the tasks' ``validates``."""
    from reference_models import model_for_data

    picks = [f"{model_for_data([form])} for {form} data" for form in ("video", "latent", "pair")
             if model_for_data([form]) is not None]
    return f"[default: the registered model that validates the data: {', '.join(picks)}]"


class RegistryHelp(click.Option):
    """An option whose help ends with text read from the model registry when help is shown
    (``help_from``), so that no help string names a model and ``blursynth --help`` imports no torch."""

    def __init__(self, *args, help_from=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.help_from = help_from

    def get_help_record(self, ctx):
        if self.help_from is not None:
            extra = self.help_from()
            self.help, self.help_from = f"{self.help} {extra}".strip(), None
        return super().get_help_record(ctx)


class RegistryCommand(click.Command):
    """A command whose help text has ``{models}`` (the registered models) and ``{inference}``
    (:func:`inference_lines`) filled in from the registry when it is shown."""

    def format_help_text(self, ctx, formatter):
        import inspect

        text = inspect.cleandoc(self.help or "")  # dedented first: the filled-in lines have no indent
        if "{models}" in text:
            from reference_models import list_models
            text = text.replace("{models}", ", ".join(list_models()))
        if "{inference}" in text:
            text = text.replace("{inference}", inference_lines())
        self.help = text
        super().format_help_text(ctx, formatter)


def _paper(field: str) -> dict:
    """Option keywords: the help ends with the model families' paper values of ``field``."""
    return {"cls": RegistryHelp, "help_from": lambda: paper_values(field)}


def training_options(func):
    """Options shared by ``train-reference`` and ``validate``.

    Options that default to the model's paper value (``ModelTask.defaults``)
    default to None here; the training loop fills them in.
    """
    decorators = [
        click.option("--preset", type=click.Choice(["paper", "probe"]), default=None,
                     help="paper: the paper's model and schedule (a GPU's work); probe: a small model "
                          "and a cosine schedule measured for the most held-out gain per CPU minute "
                          "(docs/models.md). Options given win over the preset's values. "
                          "[default: train-reference: probe on a CPU when neither --steps nor "
                          "--time-budget is given, else paper; validate: probe on a CPU, paper on a GPU]"),
        click.option("--lr-schedule", type=click.Choice(["paper", "cosine"]), default=None,
                     show_default="the preset's",
                     help="paper: the model's own schedule (--lr-decay/--lr-decay-every); cosine: decay "
                          "to 1% of --lr at the last step."),
        click.option("--ema", type=float, default=None, show_default="the preset's: paper 0, probe 0.995",
                     help="Decay of the moving average of the weights that model.pt holds and validation "
                          "scores (0: off)."),
        click.option("--model-arg", "model_arg", multiple=True, metavar="KEY=VALUE",
                     help="Model constructor argument (repeatable; VALUE parsed as JSON), "
                          "e.g. --model-arg blocks=2 --model-arg width=32; also a [model] table in a recipe."),
        click.option("--batch", type=int, default=None, show_default=_FROM_MODEL,
                     help="Samples per step (per process).", **_paper("batch")),
        click.option("--patch", type=int, default=None, show_default=_FROM_MODEL,
                     help="Random crop size (same place in every frame), 0: whole frames; "
                          "shrunk to small frames.", **_paper("patch")),
        click.option("--clip-len", type=int, default=None, show_default=_FROM_MODEL,
                     help="Frames per training clip (video models); shrunk to shorter runs.", **_paper("clip_len")),
        click.option("--lr", type=float, default=None, show_default=_FROM_MODEL,
                     help="Adam learning rate.", **_paper("lr")),
        click.option("--lr-decay", type=float, default=None, show_default=_FROM_MODEL,
                     help="Learning-rate factor of the model's paper schedule (every --lr-decay-every).",
                     **_paper("lr_decay")),
        click.option("--lr-decay-every", type=int, default=None, show_default=_FROM_MODEL,
                     help="In the unit of the model's paper (steps or epochs: docs/models.md).",
                     **_paper("lr_decay_every")),
        click.option("--weight-reg", type=float, default=None, show_default=_FROM_MODEL,
                     help="λ of the L2 weight regularization (0: none).", **_paper("weight_reg")),
        click.option("--flip/--no-flip", default=True, show_default=True,
                     help="Random horizontal and vertical flips of training items."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--amp", type=click.Choice(["none", "bf16"]), default="none", show_default=True,
                     help="Mixed precision (bf16 autocast)."),
        click.option("--compile", "compile_", is_flag=True, help="torch.compile the model."),
        click.option("--workers", type=int, default=2, show_default=True, help="DataLoader workers."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the run (split, initialization, crops, order)."),
        click.option("--select", type=click.Path(dir_okay=False), default=None,
                     help="Selection file from 'blursynth filter': train and validate on its samples only "
                          "(each stays in the split of its source)."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar or notes."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def _on_gpu(device: str) -> bool:
    """Whether ``--device`` resolves to a GPU."""
    if device == "cpu":
        return False
    import torch
    return device != "auto" or torch.cuda.is_available()


def _probe_note(model: str) -> str:
    """The one line that says a CPU run trains the probe preset, and how to get the paper's model."""
    from reference_models.checkpoint import build_model
    from reference_models.task import task_of

    probe = task_of(build_model(model, {})).preset("probe")
    return (f"note: on the CPU, training {model}'s probe preset ({probe.get('steps', 10_000)} steps, "
            f"a small model: docs/models.md); pass --preset paper (a GPU's work) or --steps N for the "
            "paper's model")


def _minutes(name: str, value: float | None) -> float | None:
    import math

    from blursynth.errors import BlursynthError
    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise BlursynthError(f"{name} {value}: must be a positive number of minutes")
    return value * 60.0


@main.command("train-reference", cls=RegistryCommand)
@click.argument("model")
@recipe_option
@click.option("--data", type=_DATA, default=None,
              help="Dataset folder (manifest.json + shards) [default: the built-in sample dataset suited "
                   "to MODEL, made on first use and cached in $BLURSYNTH_CACHE or ~/.cache/blursynth].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder [default: runs/MODEL, or runs/MODEL-2, ... when taken].")
@click.option("--steps", type=int, default=None,
              help="Training steps [default: the preset's: paper 10000 (the paper trains 300k), "
                   "probe: see docs/models.md].")
@training_options
@click.option("--split-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Train on its train split, validate on its val split [default: DATA/split.json if "
                   "present, else a by-source split made into OUT/split.json].")
@click.option("--val-every", type=int, default=1000, show_default=True, help="Steps between validations.")
@click.option("--val-samples", type=int, default=8, show_default=True, help="Validation samples scored.")
@click.option("--val-crop", type=int, default=256, show_default=True, help="Validation centre crop.")
@click.option("--log-every", type=int, default=20, show_default=True, help="Steps between log lines.")
@click.option("--ckpt-every", type=int, default=500, show_default=True, help="Steps between checkpoints.")
@click.option("--time-budget", type=float, default=None, help="Stop after this many minutes.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.pass_context
def train_reference(ctx, model, data, out, model_arg, compile_, time_budget, **kw):
    """Train a reference MODEL (see docs/models.md) on a dataset.

    \b
    blursynth train-reference MODEL      trains on the built-in sample dataset into runs/MODEL
    MODEL: {models}
    Writes OUT/checkpoint.pt, OUT/model.pt, OUT/log.jsonl, OUT/config.json (+ OUT/split.json
    when DATA has no split), OUT/curves.png.
    Multi-GPU: torchrun --nproc_per_node G $(which blursynth) train-reference ...
    """
    from blursynth.errors import BlursynthError
    from reference_models import is_model
    from reference_models.train import TrainConfig, train

    if not is_model(model):
        raise BlursynthError(f"model {model!r} is unknown; choose one of {', '.join(_model_names())}")
    if kw["preset"] is None and kw["steps"] is None and time_budget is None and not _on_gpu(kw["device"]):
        kw["preset"] = "probe"
        if not kw["quiet"]:
            click.echo(_probe_note(model), err=True)
    config = TrainConfig(data=None if data is None else str(data), out=None if out is None else str(out),
                         model=model,
                         model_args=parse_model_args(model_arg, _recipe_model_args(ctx)),
                         compile=compile_, time_budget_s=_minutes("--time-budget", time_budget), **kw)
    result = train(config)
    if not config.quiet:
        msg = f"step {result['step']}: loss {result['loss']:.5g} ({result['n_train']} training samples)"
        if result["val_psnr"] is not None:
            msg += f", val PSNR {result['val_psnr']:.2f} dB (input {result['val_psnr_input']:.2f} dB)"
        click.echo(f"{msg} -> {result['run']}", err=True)


@main.command("eval-reference")
@click.argument("run", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--weights", "weights", default=None, metavar="MODEL",
              help="Score the weights shipped for MODEL instead of a RUN (docs/models.md, 'Shipped weights').")
@click.option("--data", required=True, type=_DATA, help="Dataset folder.")
@click.option("--split", default=None, show_default="test; all with --weights",
              help="Split to score (train, val, test or all).")
@click.option("--split-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Split file [default: DATA/split.json].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Report file [default: RUN/eval-SPLIT.json; with --weights ./eval-MODEL-SPLIT.json].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", type=click.Choice(["none", "bf16"]), default="none", show_default=True,
              help="Mixed precision (bf16 autocast).")
@click.option("--crop", type=int, default=None, help="Score a centre crop of this size.")
@click.option("--max-samples", type=int, default=None,
              help="Score at most this many samples (a seeded draw across sources).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the --max-samples draw.")
@click.option("--select", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Selection file from 'blursynth filter': score only its samples of the split "
                   "[default: every sample of the split, also for a run trained with --select].")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of a table.")
@click.option("--quiet", "-q", is_flag=True, help="Only the report table.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out that is not an evaluation report (a dataset's own files never).")
def eval_reference(run, weights, data, split, split_file, out, device, amp, crop, max_samples, seed, select,
                   as_json, quiet, overwrite):
    """Score the model of RUN (or the shipped weights of --weights MODEL) on DATA: PSNR and
    SSIM of its output and of the blurry input, per scored position and in the mean.

    The split defaults to the one the run trained with; sources the run trained on are refused.
    Shipped weights never saw DATA: their split defaults to all.
    """
    from blursynth.errors import BlursynthError
    from reference_models.evaluate import evaluate, format_table
    from reference_models.shipped import shipped_weights

    if (run is None) == (weights is None):
        raise BlursynthError("eval-reference: give a RUN folder or --weights MODEL (one of them)")
    if weights is not None:
        run = shipped_weights(weights, "--weights")
        split = split or "all"
        out = out if out is not None else Path(f"eval-{weights}-{split}.json")
    split = split or "test"

    report = evaluate(run, data, split=split, split_file=split_file, device=device, amp=amp, crop=crop,
                      max_samples=max_samples, seed=seed, out=out, progress=not quiet, select=select,
                      overwrite=overwrite)
    if as_json:
        click.echo(json.dumps({k: report[k] for k in ("model", "step", "split", "n_samples", "n_frames",
                                                       "psnr", "ssim", "positions")}, indent=1))
    else:
        click.echo(f"{report['model']} at step {report['step']} on {report['n_samples']} samples of "
                   f"split {report['split']} ({report['data']}):")
        click.echo(format_table(report))
    if not quiet:
        click.echo(f"report -> {report['out']}", err=True)


@main.command("split")
@click.argument("dataset", type=_DATA)
@click.option("--val", type=float, default=0.1, show_default=True, help="Fraction of samples for validation.")
@click.option("--test", type=float, default=0.1, show_default=True, help="Fraction of samples for testing.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draw of sources into the parts.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Split file [default: DATASET/split.json].")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out that is not a split file (a dataset's own files never).")
def split(dataset, val, test, seed, out, overwrite):
    """Split DATASET by source (clip or panorama) into train/val/test; no data is copied."""
    from blursynth.budget import count
    from blursynth.curate.split import load_split, make_split

    path = make_split(dataset, val=val, test=test, seed=seed, out=out, overwrite=overwrite)
    doc = load_split(path)
    parts = ", ".join(f"{k} {count(doc['n_samples'][k], 'sample')} / {count(len(v), 'source')}"
                      for k, v in doc["sources"].items())
    click.echo(f"{parts} -> {path}", err=True)


@main.command("validate")
@click.argument("datasets", metavar="DATASET [DATASET ...]", nargs=-1, required=True, type=_DATA)
@recipe_option
@click.option("--test", "test", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="The trusted test set: a blursynth dataset, or real blurred/sharp pairs in the GoPro_Large "
                   "(CLIP/blur/, CLIP/sharp/) or BasicSR (input/, target/) layout [default: the built-in "
                   "reference test set of the data's kind, made once and cached].")
@click.option("--model", default=None, cls=RegistryHelp, help_from=validate_choice,
              help="Reference model to train.")
@click.option("--steps", type=int, default=None, show_default="the preset's",
              help="Training steps: the budget, the same on any machine.")
@click.option("--budget", type=float, default=None,
              help="A guard in minutes: training stops there, and the output says so (the verdict then "
                   "depends on the machine's speed) [default: no cap].")
@click.option("--holdout", type=float, default=0.2, show_default=True,
              help="Fraction of each dataset held out (whole sources) for the self-consistency figure; a "
                   "dataset of fewer than 3 sources is trained on whole, with no such figure.")
@click.option("--min-gain", type=float, default=0.1, show_default=True,
              help="PSNR gain (dB) over the blurry input that counts as teaching: 'teaches' when the 95% "
                   "interval of the trusted gain lies above it, 'does not teach' when it lies below.")
@click.option("--max-test-samples", type=int, default=80, show_default=True,
              help="Samples scored per test set (a seeded draw across its sources).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the run (split, checkpoint, log, eval reports, validate.json, validate.png) here "
                   "[default: a temporary folder].")
@training_options
@click.pass_context
def validate(ctx, datasets, test, model, steps, budget, holdout, min_gain, max_test_samples, out, model_arg,
             compile_, **kw):
    """Check that DATASET teaches a model to deblur, or rank several datasets: train the same
    preset for the same number of steps on each, score every model on one trusted test set.

    \b
    blursynth validate DATA                  verdict on the built-in reference test set
    blursynth validate A B --test GOPRO/     ranking, paired differences with 95% intervals
    The verdict is 'teaches' / 'does not teach' / 'inconclusive' from the 95% interval of the
    PSNR gain (bootstrap over test sources); the held-out split of each dataset of 3 or more
    sources is reported second, as self-consistency (fewer: trained on whole). Panorama data
    is scored on 6 real panoramas that no default dataset uses. Exit status 0 either way; one
    verdict line per dataset.
    """
    from blursynth.errors import BlursynthError
    from reference_models import is_model
    from reference_models.validate import validate_datasets

    if model is not None and not is_model(model):
        raise BlursynthError(f"--model {model}: unknown; choose one of {', '.join(_model_names())}")
    _minutes("--budget", budget)
    result = validate_datasets(list(datasets), test=test, model=model, steps=steps, budget_minutes=budget,
                               out=out, holdout=holdout, min_gain=min_gain, max_test_samples=max_test_samples,
                               model_args=parse_model_args(model_arg, _recipe_model_args(ctx)),
                               compile=compile_, **kw)
    click.echo(result.message())
