"""Does a dataset teach a network to deblur? Train a fixed number of steps, score on trusted data.

:func:`validate_datasets` answers for one dataset, or ranks several
(the curation question, issue 20):

1. **split** each dataset by source (``holdout`` of its samples held out),
   when it has at least :data:`HOLD_OUT_MIN_SOURCES` sources; with fewer, the
   model trains on all of it and self-consistency is not scored (holding out
   one of two sources halves what the model learns from: default panorama
   data, two scenes, was "inconclusive" trained on one and "teaches" trained
   on both; docs/benchmarks.md, "validate");
2. **train** the reference model that fits the data on the train split, for the
   preset's number of steps (``probe`` on a CPU, ``paper`` on a GPU): the
   budget is counted in steps, so the same data and seed give the same weights,
   and the same verdict, whatever the load of the machine; a minutes cap
   (``budget_minutes``) is only a guard, which says so when it cuts training short;
3. **score on a trusted test set** that the dataset did not make
   (:mod:`reference_models.trusted`: the built-in reference test set, or
   ``--test T``): the gain of every test sample (output PSNR − input PSNR), its
   mean with a 95 % interval from a bootstrap over test sources
   (:mod:`reference_models.evidence`), SSIM, and the gain per source;
4. **score self-consistency**, second: the same on the dataset's own held-out
   split, which cannot catch a defect that the whole dataset shares (sharp
   frames shifted by 3 px teach a model to shift, and it "gains" on held-out
   samples of the same data);
5. **the verdict**: ``teaches`` when the interval's lower bound is above
   ``min_gain``, ``does not teach`` when its upper bound is below it,
   ``inconclusive`` otherwise, with what would resolve it;
6. with several datasets, every model is scored on the same test samples, and
   each pair in the ranking gets the paired difference of gains with its own
   interval ("A teaches better than B by x ± y dB");
7. ``validate.json`` and ``validate.png`` (gains per source with their
   intervals, and a few test samples as input / output / sharp) in the run folder.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path

from blursynth.curate.selection import load_selection
from blursynth.dataset import Manifest
from blursynth.dataset.outdir import OutputMarker, json_bytes, output_folder, write_output
from blursynth.errors import BlursynthError
from reference_models.checkpoint import build_model
from reference_models.data import ShardIndex
from reference_models.evaluate import evaluate
from reference_models.evidence import verdict_of
from reference_models.heldout import make_split
from reference_models.registry import model_for_data, task_for
from reference_models.runtime import resolve_device
from reference_models.sample_data import reference_test_set
from reference_models.task import data_forms, task_of
from reference_models.train import TrainConfig, resolve_defaults, train
from reference_models.trusted import open_test_set
from reference_models.validate_figure import plot_validation
from reference_models.verdicts import HOLD_OUT_MIN_SOURCES, VALIDATE_FORMAT, Score, Validation, Verdict, rank

__all__ = ["choose_model", "validate_datasets"]

VALIDATE_OUT = OutputMarker.json("blursynth validate", VALIDATE_FORMAT)


def choose_model(dataset: str | Path) -> str:
    """The registered model that validates ``dataset``, asked of the registry.

    The dataset's data forms, in its order of preference
    (:func:`reference_models.task.data_forms`: ``video`` when its runs are long
    enough, then ``latent`` or ``pair``), go to
    :func:`reference_models.registry.model_for_data`: the first form some
    model family validates picks the family with the highest priority in its
    task's ``validates``, ties going to the validator's name in alphabetical order.

    Raises
    ------
    BlursynthError
        When no registered model validates any form of the data.
    """
    forms = data_forms(ShardIndex(dataset))
    name = model_for_data(forms)
    if name is None:
        raise BlursynthError(f"{dataset}: no registered model validates {' or '.join(forms)} data; "
                             "pass --model, or add a model whose task validates it (docs/models.md)")
    return name


# ------------------------------------------------------------------ checks
def _check_options(budget_minutes, steps, holdout, min_gain, max_test_samples) -> None:
    if budget_minutes is not None and not (isinstance(budget_minutes, (int, float))
                                           and math.isfinite(budget_minutes) and budget_minutes > 0):
        raise BlursynthError(f"--budget {budget_minutes}: must be a positive number of minutes")
    if steps is not None and steps < 1:
        raise BlursynthError(f"--steps {steps}: must be at least 1")
    if not (math.isfinite(holdout) and 0 < holdout < 1):
        raise BlursynthError(f"--holdout {holdout}: must be a fraction in (0, 1)")
    if max_test_samples is not None and max_test_samples < 1:
        raise BlursynthError(f"--max-test-samples {max_test_samples}: must be at least 1")
    if not math.isfinite(min_gain):
        raise BlursynthError(f"--min-gain {min_gain}: must be a finite number of dB")


def _model_of(datasets: list[Path], model: str | None) -> str:
    """The one model that validates every dataset (``--model``, else the one their data picks)."""
    if model is not None:
        return model
    chosen = {str(d): choose_model(d) for d in datasets}
    if len(set(chosen.values())) > 1:
        raise BlursynthError("the datasets need different models (" + ", ".join(f"{d}: {m}" for d, m in chosen.items())
                             + "); compare datasets of one data form, or pass --model")
    return next(iter(chosen.values()))


def _builtin_test(datasets: list[Path], model: str, log):
    """A function that makes or finds the built-in reference test set for these datasets and this model."""
    kinds = {Manifest.load(d).kind for d in datasets}
    if len(kinds) > 1:
        raise BlursynthError(f"the datasets were made by different pipelines ({', '.join(sorted(kinds))}); "
                             "pass --test T so that all are scored on one test set")
    kind = "panorama" if kinds == {"panorama"} else "highspeed"
    video = task_for(model).learns_from == "video"
    latent = 0 if video else (ShardIndex(datasets[0]).n_latent or 3)
    return lambda: reference_test_set(kind, video=video, latent=latent, log=log)


def _check_fit(model: str, model_args: dict, datasets: list[Path], test_path: Path) -> None:
    """Refuse, before any training, a test set that the model trained on these datasets cannot score.

    A fresh model meets each training dataset's items, then the test set's, as
    training and evaluation will (a video model needs runs of its frames; a
    latent model takes its K from the training data and must fit the test's).
    """
    for dataset in datasets:
        net = build_model(model, model_args)
        task = task_of(net)
        for path in (dataset, test_path):
            try:
                task.dataset(ShardIndex(path), None, model=net, clip_len=None, patch=None, augment=False,
                             flip=False, seed=0)
            except BlursynthError as exc:
                where = "--test: " if path == test_path else ""
                raise BlursynthError(f"{where}{exc}") from None


def _folder_name(k: int, dataset: Path) -> str:
    return f"{k + 1}-" + (re.sub(r"[^A-Za-z0-9_-]", "_", dataset.resolve().name)[:60] or "data")


# -------------------------------------------------------------------- run
def _validate_one(dataset: Path, folder: Path, test, model: str, *, preset: str, steps: int | None,
                  budget_minutes: float | None, seed: int, holdout: float, min_gain: float,
                  max_test_samples: int | None, select, train_options: dict) -> Verdict:
    """Split, train, score on the trusted set and on the held-out split, for one dataset."""
    folder.mkdir(parents=True, exist_ok=True)
    selection = load_selection(select, dataset) if select is not None else None
    n_sources = len({ref.source for ref in ShardIndex(dataset).refs
                     if selection is None or ref.index in selection.indices})
    held_out = n_sources >= HOLD_OUT_MIN_SOURCES
    # Written either way: training then never falls back on a split of its own or the dataset's split.json.
    split_path = make_split(dataset, val=0.0, test=holdout if held_out else 0.0, seed=seed,
                            out=folder / "split.json", select=selection)
    options = {"val_every": 10 ** 9, "ckpt_every": 10 ** 9, **train_options}
    config = TrainConfig(data=str(dataset), out=str(folder / "train"), model=model, seed=seed, preset=preset,
                         steps=steps, split_file=str(split_path),
                         select=None if select is None else str(select),
                         time_budget_s=None if budget_minutes is None else budget_minutes * 60.0, **options)
    result = train(config)
    planned = int(json.loads((folder / "train" / "config.json").read_text())["steps"])
    common = dict(device=config.device, amp=config.amp, max_samples=max_test_samples, seed=seed,
                  progress=not config.quiet)
    trusted = evaluate(folder / "train", test.path, split="all", out=folder / "eval-trusted.json", **common)
    own = None
    if held_out:
        report = evaluate(folder / "train", dataset, split="test", split_file=split_path,
                          out=folder / "eval-test.json", select=selection, **common)
        own = Score.from_report(report, f"held-out split of {dataset}", seed)
    score = Score.from_report(trusted, test.label, seed)
    return Verdict(str(dataset), model, preset, int(result["step"]), planned, int(result["n_train"]), score, own,
                   float(min_gain), verdict_of(score.gain, min_gain), budget_minutes, str(folder), n_sources)


def validate_datasets(datasets, *, test: str | Path | None = None, model: str | None = None,
                      preset: str | None = None, steps: int | None = None, budget_minutes: float | None = None,
                      out: str | Path | None = None, seed: int = 0, holdout: float = 0.2, min_gain: float = 0.1,
                      max_test_samples: int | None = 80, select: str | Path | None = None,
                      **train_options) -> Validation:
    """Train the same preset on each dataset for the same steps; score all on one trusted test set.

    Parameters
    ----------
    datasets : str, Path or a sequence of them
        Dataset folders (one: its verdict; several: also their ranking).
    test : str, Path or None
        The trusted test set: a blursynth dataset, or folders of blurred/sharp
        pairs (GoPro_Large or BasicSR layout); None: the built-in reference
        test set of the data's kind (made once and cached).
    model : str or None
        A registered model (None: the one the registry picks for the data, :func:`choose_model`).
    preset : {"paper", "probe"} or None
        None: ``paper`` on a GPU, ``probe`` on the CPU.
    steps : int or None
        Training steps (None: the preset's).
    budget_minutes : float or None
        A guard: training stops after this many minutes (evaluation comes on
        top), and the output says so; None: no cap.
    out : str, Path or None
        Run folder (default: a temporary folder, removed afterwards): one
        dataset's split, training run and reports in it, several datasets'
        in ``OUT/1-NAME/``, ``OUT/2-NAME/``…; ``validate.json``,
        ``validate.png`` and a pair-folder test set (``test-data/``) in it.
    seed : int
        Seed of the splits, the training, the draws of test samples and the bootstrap.
    holdout : float
        Fraction of each dataset's samples held out (whole sources) for
        self-consistency; a dataset of fewer than :data:`HOLD_OUT_MIN_SOURCES`
        sources is trained on whole, and has no self-consistency score.
    min_gain : float
        The verdict's threshold (dB).
    max_test_samples : int or None
        Samples scored per test set, a seeded draw across its sources.
    select : str, Path or None
        A selection file (``blursynth filter``) of the one dataset.
    **train_options
        Further :class:`TrainConfig` fields (batch, patch, lr, device, quiet, …).

    Returns
    -------
    Validation
    """
    datasets = [Path(datasets)] if isinstance(datasets, (str, Path)) else [Path(d) for d in datasets]
    if not datasets:
        raise BlursynthError("validate: give at least one DATASET")
    if select is not None and len(datasets) > 1:
        raise BlursynthError("--select: a selection belongs to one dataset; validate one dataset with it")
    _check_options(budget_minutes, steps, holdout, min_gain, max_test_samples)
    if select is not None:
        load_selection(select, datasets[0])  # a selection of another dataset is one line before any work
    model = _model_of(datasets, model)
    if preset is None:  # counted in steps: the probe's on the CPU, the paper's on a GPU
        preset = "paper" if resolve_device(train_options.get("device", "auto")).startswith("cuda") else "probe"
    # A model the options cannot build is one line before anything is split or trained.
    model_args = resolve_defaults(TrainConfig(model=model, preset=preset,
                                              model_args=train_options.get("model_args") or {}),
                                  task_for(model)).model_args
    build_model(model, model_args)
    quiet = train_options.get("quiet", False)

    def log(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr)

    builtin = _builtin_test(datasets, model, log) if test is None else None
    # --out is locked for the whole check, and removed if an error leaves it empty (blursynth.dataset.outdir).
    with (tempfile.TemporaryDirectory(prefix="blursynth-validate-") if out is None
          else contextlib.nullcontext(out)) as run, output_folder(run):
        run = Path(run)
        pairs = run / "test-data"
        made = not pairs.exists()
        try:
            test_set = open_test_set(test, builtin, run)
            for dataset in datasets:
                if Manifest.load(test_set.path).fingerprint == Manifest.load(dataset).fingerprint:
                    raise BlursynthError(f"--test {test_set.path}: is {dataset} itself; a trusted test set is one "
                                         "the dataset did not make")
            _check_fit(model, model_args, datasets, test_set.path)
        except BlursynthError:
            if made:  # pair folders read into a dataset for nothing: no partial output is left
                shutil.rmtree(pairs, ignore_errors=True)
            raise
        verdicts = []
        for k, dataset in enumerate(datasets):
            folder = run if len(datasets) == 1 else run / _folder_name(k, dataset)
            if len(datasets) > 1:
                log(f"[{k + 1}/{len(datasets)}] {dataset}")
            verdicts.append(_validate_one(dataset, folder, test_set, model, preset=preset, steps=steps,
                                          budget_minutes=budget_minutes, seed=seed, holdout=holdout,
                                          min_gain=min_gain, max_test_samples=max_test_samples, select=select,
                                          train_options=train_options))
        ranking, comparisons = rank(verdicts, seed)
        result = Validation(verdicts, ranking, comparisons, test_set.label, "" if out is None else str(run))
        write_output(run / "validate.json", json_bytes(result.to_json()), VALIDATE_OUT)
        plot_validation(result, test_set.path, run / "validate.png", device=train_options.get("device", "auto"))
    return result
