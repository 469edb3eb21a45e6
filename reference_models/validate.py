"""Does a dataset teach a network to deblur? Train briefly, score on held-out sources.

``validate_dataset`` splits the dataset by source, trains a reference model for
a time budget on the train split, evaluates it on the test split and compares
the PSNR of its output with the PSNR of the blurry input. A dataset whose blur
and sharp frames are consistent teaches even a briefly trained model to beat
its input on sources it never saw; one whose pairs are misaligned, whose
"sharp" frames are blurred too, or whose blur has nothing to learn does not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import tempfile
from pathlib import Path

from blursynth.curation import load_selection
from blursynth.errors import BlursynthError
from blursynth.outdir import output_folder
from reference_models.data import ShardIndex
from reference_models.evaluate import evaluate
from reference_models.registry import is_model
from reference_models.split import make_split
from reference_models.train import TrainConfig, train

__all__ = ["MIN_CONCLUSIVE_STEPS", "Verdict", "choose_model", "validate_dataset"]

# Below this many steps, "no gain yet" says more about the budget than about the data.
MIN_CONCLUSIVE_STEPS = 2000

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


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of :func:`validate_dataset`.

    Attributes
    ----------
    teaches : bool
        The PSNR gain over the blurry input reached ``min_gain``.
    psnr_output, psnr_input, gain : float
        Mean PSNR (dB) of the output and of the blurry input on the held-out samples.
    steps : int
        Training steps that ran within the budget.
    n_test : int
        Held-out samples scored.
    report : dict
        The evaluation report.
    model : str
        The model trained.
    n_train : int
        Samples of the train split trained on (after ``--select``).
    """

    teaches: bool
    psnr_output: float
    psnr_input: float
    gain: float
    steps: int
    n_test: int
    report: dict
    model: str = ""
    n_train: int = 0

    def message(self, dataset: str, model: str) -> str:
        trained = f" on {self.n_train} training samples" if self.n_train else ""
        figures = (f"PSNR on {self.n_test} held-out samples: {self.psnr_output:.2f} dB after "
                   f"{self.steps} steps{trained} vs {self.psnr_input:.2f} dB for the blurry input "
                   f"({self.gain:+.2f} dB)")
        if self.teaches:
            return f"{figures}\nverdict: {dataset} teaches {model} to deblur."
        if not self.conclusive:
            return (f"{figures}\nverdict: inconclusive: no gain after only {self.steps} training steps "
                    f"(fewer than {MIN_CONCLUSIVE_STEPS}); give a longer --budget or a GPU (on the CPU, "
                    "small --patch/--clip-len/--batch help).")
        return f"{figures}\nverdict: {dataset} does NOT teach {model} to deblur."

    @property
    def conclusive(self) -> bool:
        """A gain is evidence at any step count; its absence only after enough training."""
        return self.teaches or self.steps >= MIN_CONCLUSIVE_STEPS


def validate_dataset(dataset: str | Path, model: str | None = None, budget_minutes: float = 10.0,
                     out: str | Path | None = None, seed: int = 0, val: float = 0.0, test: float = 0.2,
                     min_gain: float = 0.1, max_test_samples: int | None = 32,
                     select: str | Path | None = None, **train_options) -> Verdict:
    """Split by source, train for ``budget_minutes``, evaluate on the held-out test split.

    Parameters
    ----------
    dataset : str or Path
        Dataset folder.
    model : str or None
        A registered model name (``None``: :func:`choose_model`).
    budget_minutes : float
        Training wall-clock budget (evaluation comes on top); positive and finite.
    out : str or Path or None
        Run folder (default: a temporary folder, removed afterwards); the
        split file is written there, never into the dataset.
    seed : int
        Seed of the split, of training and of the draw of test samples.
    val, test : float
        Split fractions (by samples, whole sources per split).
    min_gain : float
        The PSNR gain (dB) over the blurry input that counts as teaching.
    max_test_samples : int or None
        Score at most this many held-out samples, a seeded draw across the
        held-out sources (not the first ones in index order).
    select : str or Path or None
        A selection file (``blursynth filter``): the split is made over the
        selected samples' sources, and training and scoring use only the
        selected samples, each in the split of its source.
    **train_options
        Further :class:`TrainConfig` fields (batch, patch, lr, device, …).

    Returns
    -------
    Verdict
        ``teaches`` is ``gain >= min_gain``.
    """
    if not (isinstance(budget_minutes, (int, float)) and math.isfinite(budget_minutes) and budget_minutes > 0):
        raise BlursynthError(f"--budget {budget_minutes}: must be a positive number of minutes")
    if max_test_samples is not None and max_test_samples < 1:
        raise BlursynthError(f"--max-test-samples {max_test_samples}: must be at least 1")
    if not math.isfinite(min_gain):
        raise BlursynthError(f"--min-gain {min_gain}: must be a finite number of dB")
    selection = load_selection(select, dataset) if select is not None else None
    model = model or choose_model(dataset)
    # --out is locked for the whole check, and removed if an error leaves it empty (blursynth.outdir).
    with (tempfile.TemporaryDirectory(prefix="blursynth-validate-") if out is None
          else contextlib.nullcontext(out)) as run, output_folder(run):
        run = Path(run)
        split_path = make_split(dataset, val=val, test=test, seed=seed, out=run / "split.json", select=selection)
        options = {"steps": 10 ** 9, "val_every": 10 ** 9, "ckpt_every": 10 ** 9, **train_options}
        config = TrainConfig(data=str(dataset), out=str(run / "train"), model=model, seed=seed,
                             split_file=str(split_path), select=None if select is None else str(select),
                             time_budget_s=budget_minutes * 60.0, **options)
        result = train(config)
        report = evaluate(run / "train", dataset, split="test", split_file=split_path,
                          device=config.device, amp=config.amp, max_samples=max_test_samples, seed=seed,
                          out=run / "eval-test.json", progress=not config.quiet, select=selection)
    gain = report["psnr"]["gain"]
    return Verdict(teaches=gain >= min_gain, psnr_output=report["psnr"]["output"],
                   psnr_input=report["psnr"]["input"], gain=gain, steps=result["step"],
                   n_test=report["n_samples"], report=report, model=model, n_train=result["n_train"])
