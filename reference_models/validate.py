"""Does a dataset teach a network to deblur? Train a fixed number of steps, score on trusted data.

:func:`validate_datasets` answers for one dataset, or ranks several
(the curation question, issue 20):

1. **split** each dataset by source (``holdout`` of its samples held out);
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
import dataclasses
import io
import json
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from blursynth.dataset.atomic import atomic_write_bytes
from blursynth.curate.selection import load_selection
from blursynth.errors import BlursynthError
from blursynth.dataset.outdir import OutputKind, json_bytes, output_folder, write_output
from blursynth.dataset import Manifest
from reference_models.apply import deblur_frames
from reference_models.checkpoint import build_model, model_from_checkpoint
from reference_models.data import ShardIndex
from reference_models.evaluate import evaluate
from reference_models.evidence import (
    Interval, bootstrap_interval, per_source, sources_to_resolve, verdict_of,
)
from reference_models.registry import is_model
from reference_models.runtime import resolve_device
from reference_models.sample_data import reference_test_set
from reference_models.split import make_split
from reference_models.task import task_of
from reference_models.train import TrainConfig, resolve_defaults, train
from reference_models.trusted import open_test_set

__all__ = ["Comparison", "Score", "VALIDATE_FORMAT", "Validation", "Verdict", "choose_model", "data_kind",
           "validate_datasets"]

VALIDATE_FORMAT = "blursynth-validate/1"
VALIDATE_OUT = OutputKind.json("blursynth validate", VALIDATE_FORMAT)
# Test samples shown as input / output / sharp in validate.png, and their centre crop.
N_EXAMPLES, EXAMPLE_CROP = 3, 160
# Sources drawn one by one in validate.png; of more, those with the lowest and highest gains.
MAX_PLOTTED = 40

# The model that validates each kind of data, in order of preference.
MODEL_FOR = {"video": "dtb", "latent": "blur2video", "pair": "blur2video"}


def data_kind(index: ShardIndex) -> str:
    """``video`` when runs of consecutive exposures give a video model 3 frames, else latent/pair."""
    longest = max(len(run) for run in index.runs) * index.seq_len
    if longest >= 3:
        return "video"
    return "latent" if index.n_latent else "pair"


def choose_model(dataset: str | Path) -> str:
    """A registered model that fits ``dataset`` (video -> dtb; latent or pair -> blur2video).

    Raises
    ------
    BlursynthError
        When the model for the dataset's kind is not registered.
    """
    index = ShardIndex(dataset)
    kind = data_kind(index)
    name = MODEL_FOR[kind]
    if not is_model(name):
        raise BlursynthError(
            f"{dataset}: {kind} data (single blurred frames with their "
            f"{'latent frames' if kind == 'latent' else 'sharp frame'}) is validated by the blur2video "
            "model (Argaw et al. 2021), which is not available yet; make a video dataset "
            "(blursynth highspeed) to validate with dtb")
    return name


# ---------------------------------------------------------------- results
@dataclasses.dataclass(frozen=True)
class Score:
    """One trained model scored on one test set.

    Attributes
    ----------
    label : str
        The test set.
    gain : Interval
        Mean PSNR gain (dB) over the test samples, with its bootstrap interval over sources.
    psnr_output, psnr_input, ssim_output, ssim_input : float
        Means over the test samples.
    per_source : dict of str to Interval
        Each source's mean gain, with an interval over its own samples.
    samples : tuple of (int, int, str, float)
        ``(index, start, source, gain)`` per test sample (paired comparisons match on index and start).
    report : str
        The evaluation report (``eval-*.json``).
    """

    label: str
    gain: Interval
    psnr_output: float
    psnr_input: float
    ssim_output: float
    ssim_input: float
    per_source: dict
    samples: tuple
    report: str

    @classmethod
    def from_report(cls, report: dict, label: str, seed: int) -> "Score":
        """The gains of an evaluation report's ``per_sample`` list, with their intervals."""
        items = report["per_sample"]
        gains = [item["psnr_output"] - item["psnr_input"] for item in items]
        sources = [str(item["source"]) for item in items]

        def mean(key: str) -> float:
            return float(np.mean([item[key] for item in items]))

        return cls(label, bootstrap_interval(gains, sources, seed=seed), mean("psnr_output"), mean("psnr_input"),
                   mean("ssim_output"), mean("ssim_input"), per_source(gains, sources, seed=seed),
                   tuple((int(item["index"]), int(item.get("start", 0)), s, g)
                         for item, s, g in zip(items, sources, gains)),
                   str(report.get("out", "")))

    def summary(self) -> str:
        iv = self.gain
        over = (f"bootstrap over {iv.n_sources} sources" if iv.unit == "source" else
                f"{iv.n_sources} source{'s' if iv.n_sources != 1 else ''}: too few to resample, so the "
                "interval resamples samples and is optimistic")
        return (f"{iv.n_samples} samples: PSNR {self.psnr_output:.2f} dB vs {self.psnr_input:.2f} dB for the "
                f"blurry input, gain {iv.text()}, {over}; SSIM {self.ssim_output:.4f} vs {self.ssim_input:.4f}")

    def sources_line(self, most: int = 8) -> str:
        items = list(self.per_source.items())
        shown = ", ".join(f"{name} {iv.mean:+.2f} ({iv.low:+.2f} to {iv.high:+.2f})" for name, iv in items[:most])
        more = f", and {len(items) - most} more (validate.json)" if len(items) > most else ""
        return f"  gain per source: {shown}{more}"

    def to_json(self) -> dict:
        return {"label": self.label, "gain": self.gain.to_json(),
                "psnr": {"output": self.psnr_output, "input": self.psnr_input},
                "ssim": {"output": self.ssim_output, "input": self.ssim_input},
                "per_source": {k: v.to_json() for k, v in self.per_source.items()},
                "samples": [{"index": i, "start": t, "source": s, "gain": g} for i, t, s, g in self.samples],
                "report": self.report}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What :func:`validate_datasets` found for one dataset.

    Attributes
    ----------
    dataset, model, preset : str
    steps, planned_steps : int
        Training steps that ran, and the preset's (or ``--steps``) budget.
    n_train : int
        Training samples (after ``--select``).
    trusted : Score
        On the trusted test set: the verdict's evidence.
    self_consistency : Score or None
        On the dataset's own held-out split (None for a dataset of one source).
    min_gain : float
        The threshold of the verdict rule.
    outcome : {"teaches", "does not teach", "inconclusive"}
    budget_minutes : float or None
        The minutes cap; it cut training short when ``steps < planned_steps``.
    run : str
        This dataset's run folder (``train/``, ``eval-*.json``, ``split.json``).
    """

    dataset: str
    model: str
    preset: str
    steps: int
    planned_steps: int
    n_train: int
    trusted: Score
    self_consistency: Score | None
    min_gain: float
    outcome: str
    budget_minutes: float | None = None
    run: str = ""

    @property
    def teaches(self) -> bool:
        return self.outcome == "teaches"

    @property
    def gain(self) -> float:
        return self.trusted.gain.mean

    @property
    def cut_short(self) -> bool:
        return self.steps < self.planned_steps

    def verdict_line(self) -> str:
        iv, threshold = self.trusted.gain, self.min_gain
        bounds = f"{iv.level:.0%} interval of the gain on the trusted test set, {iv.low:+.2f} to {iv.high:+.2f} dB,"
        if self.outcome == "teaches":
            return (f"verdict: {self.dataset} teaches {self.model} to deblur: the {bounds} lies above "
                    f"--min-gain {threshold:.2f} dB.")
        if self.outcome == "does not teach":
            return (f"verdict: {self.dataset} does NOT teach {self.model} to deblur: the {bounds} lies below "
                    f"--min-gain {threshold:.2f} dB.")
        need = sources_to_resolve(iv, threshold)
        more = (f"a test set of about {need} {'sources' if iv.unit == 'source' else 'samples'} at this spread "
                "(--test)" if need is not None else "a larger test set (--test)")
        return (f"verdict: inconclusive for {self.dataset}: the {bounds} contains --min-gain {threshold:.2f} dB; "
                f"{more}, or longer training (--steps, or --preset paper on a GPU), would resolve it.")

    def message(self) -> str:
        """The lines ``validate`` prints for this dataset; the verdict is the last."""
        trained = (f"{self.model}, {self.preset} preset: {self.steps} steps on {self.n_train} training samples "
                   f"of {self.dataset}")
        lines = [trained]
        if self.cut_short:
            lines.append(f"note: the --budget of {self.budget_minutes:g} min stopped training at step {self.steps} "
                         f"of {self.planned_steps}; the verdict is for that shorter training, and only the "
                         "full step count gives the same verdict on any machine")
        lines.append(f"trusted test ({self.trusted.label}), {self.trusted.summary()}")
        lines.append(self.trusted.sources_line())
        if self.self_consistency is not None:
            lines.append(f"self-consistency (held-out split of {self.dataset}; cannot catch a defect the whole "
                         f"dataset shares), {self.self_consistency.summary()}")
        else:
            lines.append(f"self-consistency: none ({self.dataset} has one source, no held-out split)")
        lines.append(self.verdict_line())
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "model": self.model, "preset": self.preset, "steps": self.steps,
                "planned_steps": self.planned_steps, "cut_short": self.cut_short, "n_train": self.n_train,
                "budget_minutes": self.budget_minutes, "min_gain": self.min_gain, "verdict": self.outcome,
                "trusted": self.trusted.to_json(),
                "self_consistency": None if self.self_consistency is None else self.self_consistency.to_json(),
                "run": self.run}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The paired difference of gains of two datasets' models on the same test samples (``a − b``)."""

    a: str
    b: str
    difference: Interval

    def text(self) -> str:
        d = self.difference
        paired = (f"({d.level:.0%} interval {d.low:+.2f} to {d.high:+.2f}, paired over the same {d.n_samples} "
                  f"test samples)")
        if d.low > 0:
            return f"{self.a} teaches better than {self.b} by {d.mean:.2f} ± {d.half_width:.2f} dB {paired}"
        if d.high < 0:
            return f"{self.b} teaches better than {self.a} by {-d.mean:.2f} ± {d.half_width:.2f} dB {paired}"
        return (f"{self.a} and {self.b} do not differ measurably: {d.mean:+.2f} ± {d.half_width:.2f} dB "
                f"{paired}")

    def to_json(self) -> dict:
        return {"a": self.a, "b": self.b, "difference": self.difference.to_json(), "text": self.text()}


@dataclasses.dataclass(frozen=True)
class Validation:
    """The outcome of :func:`validate_datasets`: one verdict per dataset, and the ranking of several.

    Attributes
    ----------
    verdicts : list of Verdict
        In the order the datasets were given.
    ranking : list of int
        Indices into ``verdicts``, best mean trusted gain first.
    comparisons : list of Comparison
        Each dataset of the ranking against the next one.
    test : str
        The trusted test set.
    run : str
        The run folder (empty when it was temporary).
    """

    verdicts: list
    ranking: list
    comparisons: list
    test: str
    run: str = ""

    def message(self) -> str:
        blocks = [v.message() for v in self.verdicts]
        if len(self.verdicts) > 1:
            first = self.verdicts[0]
            lines = [f"ranking on {self.test} ({first.model}, {first.preset} preset, "
                     f"{first.planned_steps} steps each):"]
            for rank, k in enumerate(self.ranking, 1):
                v = self.verdicts[k]
                lines.append(f"  {rank}. {v.dataset}: {v.trusted.gain.text()}, {v.outcome}")
            lines += [c.text() for c in self.comparisons]
            blocks.append("\n".join(lines))
        return "\n".join(blocks)

    def to_json(self) -> dict:
        return {"format": VALIDATE_FORMAT, "test": self.test, "verdicts": [v.to_json() for v in self.verdicts],
                "ranking": [self.verdicts[k].dataset for k in self.ranking],
                "comparisons": [c.to_json() for c in self.comparisons]}


def compare(a: Verdict, b: Verdict, seed: int = 0) -> Comparison:
    """Paired difference of the trusted gains of ``a`` and ``b`` over the test samples both scored."""
    gains_b = {(i, t): g for i, t, _, g in b.trusted.samples}
    pairs = [(g - gains_b[(i, t)], s) for i, t, s, g in a.trusted.samples if (i, t) in gains_b]
    if not pairs:
        raise BlursynthError(f"{a.dataset} and {b.dataset} were scored on different test samples")
    return Comparison(a.dataset, b.dataset,
                      bootstrap_interval([d for d, _ in pairs], [s for _, s in pairs], seed=seed))


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
    """The one model that validates every dataset (``--model``, else the one their kind picks)."""
    if model is not None:
        return model
    chosen = {str(d): choose_model(d) for d in datasets}
    if len(set(chosen.values())) > 1:
        raise BlursynthError("the datasets need different models (" + ", ".join(f"{d}: {m}" for d, m in chosen.items())
                             + "); compare datasets of one kind, or pass --model")
    return next(iter(chosen.values()))


def _builtin_test(datasets: list[Path], model: str, log):
    """A function that makes or finds the built-in reference test set for these datasets and this model."""
    kinds = {Manifest.load(d).kind for d in datasets}
    if len(kinds) > 1:
        raise BlursynthError(f"the datasets were made by different pipelines ({', '.join(sorted(kinds))}); "
                             "pass --test T so that all are scored on one test set")
    kind = "panorama" if kinds == {"panorama"} else "highspeed"
    video = task_of(build_model(model, {})).sample_kind == "video"
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
    one_source = len(ShardIndex(dataset).sources) < 2
    split_path = None if one_source else make_split(dataset, val=0.0, test=holdout, seed=seed,
                                                     out=folder / "split.json", select=selection)
    options = {"val_every": 10 ** 9, "ckpt_every": 10 ** 9, **train_options}
    config = TrainConfig(data=str(dataset), out=str(folder / "train"), model=model, seed=seed, preset=preset,
                         steps=steps, split_file=None if split_path is None else str(split_path),
                         select=None if select is None else str(select),
                         time_budget_s=None if budget_minutes is None else budget_minutes * 60.0, **options)
    result = train(config)
    planned = int(json.loads((folder / "train" / "config.json").read_text())["steps"])
    common = dict(device=config.device, amp=config.amp, max_samples=max_test_samples, seed=seed,
                  progress=not config.quiet)
    trusted = evaluate(folder / "train", test.path, split="all", out=folder / "eval-trusted.json", **common)
    own = None
    if split_path is not None:
        report = evaluate(folder / "train", dataset, split="test", split_file=split_path,
                          out=folder / "eval-test.json", select=selection, **common)
        own = Score.from_report(report, f"held-out split of {dataset}", seed)
    score = Score.from_report(trusted, test.label, seed)
    return Verdict(str(dataset), model, preset, int(result["step"]), planned, int(result["n_train"]), score, own,
                   float(min_gain), verdict_of(score.gain, min_gain), budget_minutes, str(folder))


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
        A registered model (None: the one the data's kind picks, :func:`choose_model`).
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
        Fraction of each dataset's samples held out (whole sources) for self-consistency.
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
                                  task_of(build_model(model, {}))).model_args
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
        ranking = sorted(range(len(verdicts)), key=lambda k: -verdicts[k].gain)
        comparisons = [compare(verdicts[a], verdicts[b], seed) for a, b in zip(ranking, ranking[1:])]
        result = Validation(verdicts, ranking, comparisons, test_set.label, "" if out is None else str(run))
        write_output(run / "validate.json", json_bytes(result.to_json()), VALIDATE_OUT)
        plot_validation(result, test_set.path, run / "validate.png", device=train_options.get("device", "auto"))
    return result


# ------------------------------------------------------------------ picture
def _examples(verdicts: list[Verdict], test_path: Path, device: str, seed: int = 0) -> list[dict]:
    """Up to :data:`N_EXAMPLES` trusted test samples (from different sources) as input, outputs, sharp."""
    samples = verdicts[0].trusted.samples
    by_source: dict[str, int] = {}  # a seeded draw, one sample per source, sources in the draw's order
    for k in np.random.default_rng(seed).permutation(len(samples)):
        by_source.setdefault(samples[k][2], int(samples[k][0]))
    chosen = list(by_source.items())[:N_EXAMPLES]
    device = resolve_device(device)
    index = ShardIndex(test_path)
    refs = {r.index: r for r in index.refs}
    models = [model_from_checkpoint(Path(v.run) / "train")[0].to(device) for v in verdicts]
    examples = []
    for source, i in chosen:
        row: dict = {"source": source, "outputs": []}
        for model in models:
            item = task_of(model).dataset(index, [refs[i]], model=model, clip_len=None, patch=None, augment=False,
                                          flip=False, seed=0)[0]
            blur = item["blur"]
            if blur.ndim == 4:  # a video window: the sample's middle frame, the model run over the window
                j = int(item["first"]) + int(item["count"]) // 2
                frames = [f.permute(1, 2, 0).numpy() for f in blur]
                out = list(deblur_frames(model, iter(frames), len(frames), device=device))[j]
                shown, sharp = blur[j], item["sharp"][j]
            else:
                out = next(deblur_frames(model, iter([blur.permute(1, 2, 0).numpy()]), 1, device=device))
                if out.ndim == 4:  # K latent frames: the middle one
                    out = out[out.shape[0] // 2]
                target = item["latent"] if "latent" in item else item["sharp"][None]
                shown, sharp = blur, target[target.shape[0] // 2]
            row["outputs"].append((out.clamp(0, 1) * 255).round().to(torch.uint8))
            row["input"], row["sharp"] = shown, sharp
        examples.append(row)
    return examples


def _crop(image) -> np.ndarray:
    """A ``[3, H, W]`` uint8 tensor as an ``[h, w, 3]`` array, its centre crop of :data:`EXAMPLE_CROP`."""
    arr = image.permute(1, 2, 0).numpy()
    h, w = arr.shape[:2]
    ch, cw = min(h, EXAMPLE_CROP), min(w, EXAMPLE_CROP)
    y, x = (h - ch) // 2, (w - cw) // 2
    return arr[y:y + ch, x:x + cw]


def plot_validation(result: Validation, test_path: Path, out: Path, device: str = "auto") -> Path:
    """``validate.png``: the trusted gain per source with its interval for each dataset, the overall
    mean with its interval, the threshold, and a few test samples as input / output(s) / sharp.

    Written atomically (:func:`blursynth.dataset.atomic.atomic_write_bytes`), as ``curves.png`` is.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    verdicts = result.verdicts
    examples = _examples(verdicts, Path(test_path), device)
    sources = sorted(verdicts[0].trusted.per_source)
    if len(sources) > MAX_PLOTTED:  # the sources where the first model gains least and most
        ranked = sorted(sources, key=lambda s: verdicts[0].trusted.per_source[s].mean)
        sources = sorted(ranked[:MAX_PLOTTED // 2] + ranked[-(MAX_PLOTTED // 2):])
    columns = 2 + len(verdicts)
    rows = 1 + len(examples)
    fig = plt.figure(figsize=(max(8.0, 2.2 * columns), 3.4 + 2.2 * len(examples)))
    grid = fig.add_gridspec(rows, columns, height_ratios=[1.6] + [1.0] * len(examples))
    ax = fig.add_subplot(grid[0, :])
    width = 0.8 / len(verdicts)
    for k, v in enumerate(verdicts):
        xs = np.arange(len(sources) + 1) + (k - (len(verdicts) - 1) / 2) * width
        ivs = [v.trusted.per_source[s] for s in sources] + [v.trusted.gain]
        means = np.array([iv.mean for iv in ivs])
        err = np.array([[iv.mean - iv.low for iv in ivs], [iv.high - iv.mean for iv in ivs]])
        ax.errorbar(xs, means, yerr=err, fmt="o", capsize=3, label=f"{v.dataset}: {v.outcome}")
    ax.axhline(verdicts[0].min_gain, color="tab:red", ls="--", lw=1, label=f"--min-gain {verdicts[0].min_gain:g} dB")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.axvline(len(sources) - 0.5, color="grey", lw=0.5, ls=":")
    ax.set_xticks(range(len(sources) + 1), [*sources, "all (over sources)"], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("PSNR gain (dB)")
    title = f"gain on the trusted test set: {result.test}"
    ax.set_title(title if len(title) <= 90 else title[:89] + "…", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="best")
    for r, row in enumerate(examples, start=1):
        panels = [("input", row["input"])] + [(f"output ({v.dataset})"[:40], o) for v, o in zip(verdicts, row["outputs"])]
        panels.append(("sharp", row["sharp"]))
        for c, (title, image) in enumerate(panels):
            axi = fig.add_subplot(grid[r, c])
            axi.imshow(_crop(image))
            axi.set_title(title if c else f"{row['source']}: input"[:40], fontsize=7)
            axi.axis("off")
    # fixed margins: tight_layout measures every text box, which cost seconds per figure
    fig.subplots_adjust(left=0.08, right=0.98, top=0.95, bottom=0.03, hspace=0.75, wspace=0.15)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(out, png.getvalue())
    return out
