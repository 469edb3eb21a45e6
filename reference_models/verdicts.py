"""What ``validate`` found: scores with intervals, verdicts, paired comparisons and the ranking.

:class:`Score` is one trained model scored on one test set (the mean gain with
its bootstrap interval over test sources, :mod:`reference_models.evidence`);
:class:`Verdict` is one dataset's outcome under the verdict rule;
:func:`compare` is the paired difference of two datasets' gains on the same
test samples; :class:`Validation` holds the verdicts of one ``validate`` call,
their ranking, and ``validate.json``'s document (:data:`VALIDATE_FORMAT`).
:mod:`reference_models.validate` runs the check and makes these.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from blursynth.errors import BlursynthError
from reference_models.evidence import Interval, bootstrap_interval, per_source, sources_to_resolve

__all__ = ["Comparison", "HOLD_OUT_MIN_SOURCES", "Score", "VALIDATE_FORMAT", "Validation", "Verdict", "compare", "rank"]

VALIDATE_FORMAT = "blursynth-validate/1"


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


# Fewest sources from which validate takes a held-out split: with fewer, the model trains on all of them.
HOLD_OUT_MIN_SOURCES = 3


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
        On the dataset's own held-out split (None for a dataset of too few
        sources to hold one out: it is trained on whole).
    min_gain : float
        The threshold of the verdict rule.
    outcome : {"teaches", "does not teach", "inconclusive"}
    budget_minutes : float or None
        The minutes cap; it cut training short when ``steps < planned_steps``.
    run : str
        This dataset's run folder (``train/``, ``eval-*.json``, ``split.json``).
    n_sources : int
        Sources of the dataset.
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
    n_sources: int = 1

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
            some = "one source" if self.n_sources == 1 else f"{self.n_sources} sources"
            lines.append(f"self-consistency: none ({self.dataset} has {some}, all trained on: a held-out split "
                         f"needs at least {HOLD_OUT_MIN_SOURCES}, so that training keeps "
                         f"{HOLD_OUT_MIN_SOURCES - 1})")
        lines.append(self.verdict_line())
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"dataset": self.dataset, "model": self.model, "preset": self.preset, "steps": self.steps,
                "planned_steps": self.planned_steps, "cut_short": self.cut_short, "n_train": self.n_train,
                "budget_minutes": self.budget_minutes, "min_gain": self.min_gain, "verdict": self.outcome,
                "n_sources": self.n_sources,
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


def rank(verdicts: list, seed: int = 0) -> tuple[list, list]:
    """The ranking of ``verdicts`` (indices, best mean trusted gain first) and each one's
    :class:`Comparison` with the next."""
    ranking = sorted(range(len(verdicts)), key=lambda k: -verdicts[k].gain)
    return ranking, [compare(verdicts[a], verdicts[b], seed) for a, b in zip(ranking, ranking[1:])]
