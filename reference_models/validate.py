"""Does a dataset teach a network to deblur? Train briefly, score on held-out sources.

``validate_dataset`` splits the dataset by source, trains a reference model for
a time budget on the train split, evaluates it on the test split and compares
the PSNR of its output with the PSNR of the blurry input. A dataset whose blur
and sharp frames are consistent teaches even a briefly trained model to beat
its input on sources it never saw; one whose pairs are misaligned, whose
"sharp" frames are blurred too, or whose blur has nothing to learn does not.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from reference_models.evaluate import evaluate
from reference_models.split import make_split
from reference_models.train import TrainConfig, train


# Below this many steps, "no gain yet" says more about the budget than about the data.
MIN_CONCLUSIVE_STEPS = 2000


@dataclasses.dataclass(frozen=True)
class Verdict:
    teaches: bool
    psnr_output: float
    psnr_input: float
    gain: float
    steps: int
    n_test: int
    report: dict

    def message(self, dataset: str, model: str) -> str:
        figures = (f"PSNR on {self.n_test} held-out samples: {self.psnr_output:.2f} dB after "
                   f"{self.steps} steps vs {self.psnr_input:.2f} dB for the blurry input "
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


def validate_dataset(dataset: str | Path, model: str = "dtb", budget_minutes: float = 10.0,
                     out: str | Path | None = None, seed: int = 0, val: float = 0.0, test: float = 0.2,
                     min_gain: float = 0.1, max_test_samples: int | None = 32,
                     **train_options) -> Verdict:
    """Split by source, train for ``budget_minutes``, evaluate on the held-out test split.

    Args:
        dataset: dataset folder.
        model: a registered model name.
        budget_minutes: training wall-clock budget (evaluation comes on top).
        out: run folder (default: a temporary folder, removed afterwards);
            the split file is written there, never into the dataset.
        seed: seed of the split and of training.
        val, test: split fractions (by samples, whole sources per split).
        min_gain: the PSNR gain (dB) over the blurry input that counts as teaching.
        max_test_samples: score at most this many held-out samples.
        train_options: further :class:`TrainConfig` fields (batch, patch, lr, device, …).

    Returns:
        The :class:`Verdict`; ``teaches`` is ``gain >= min_gain``.
    """
    if budget_minutes <= 0:
        raise ValueError(f"budget_minutes must be positive, got {budget_minutes}")
    with (tempfile.TemporaryDirectory(prefix="blursynth-validate-") if out is None
          else _keep(Path(out))) as run:
        run = Path(run)
        run.mkdir(parents=True, exist_ok=True)
        split_path = make_split(dataset, val=val, test=test, seed=seed, out=run / "split.json")
        options = {"steps": 10 ** 9, "val_every": 10 ** 9, "ckpt_every": 10 ** 9, **train_options}
        config = TrainConfig(data=str(dataset), out=str(run / "train"), model=model, seed=seed,
                             split_file=str(split_path), time_budget_s=budget_minutes * 60.0, **options)
        result = train(config)
        report = evaluate(run / "train", dataset, split="test", split_file=split_path,
                          device=config.device, amp=config.amp, max_samples=max_test_samples,
                          out=run / "eval-test.json", progress=not config.quiet)
    gain = report["psnr"]["gain"]
    return Verdict(teaches=gain >= min_gain, psnr_output=report["psnr"]["output"],
                   psnr_input=report["psnr"]["input"], gain=gain, steps=result["step"],
                   n_test=report["n_samples"], report=report)


class _keep:
    """A context manager yielding a folder that stays."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        return None
