"""How sure a gain is: a bootstrap interval over test sources, and the verdict rule of ``validate``.

A test set's samples are not independent: frames of one clip, or views of one
panorama, share their content and their motion, so a model that happens to
suit one source gains on all of its samples at once. The interval therefore
resamples whole *sources* (a cluster bootstrap): each of ``n_boot`` draws
takes as many sources as the test set has, with replacement, and computes the
mean gain over all the samples of the drawn sources; the interval is the
central ``level`` quantile range of those means (percentile bootstrap). The
draws come from ``numpy.random.default_rng(seed)``, so an interval is a
function of the gains, their sources and the seed only.

With fewer than :data:`MIN_SOURCES` sources there are too few clusters to
resample; the interval then resamples samples and says so (``unit``), and is
optimistic about the spread of unseen sources.

The verdict (:func:`verdict_of`) compares the interval with a threshold:
``teaches`` when its lower bound is above it, ``does not teach`` when its upper
bound is below it, ``inconclusive`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

__all__ = ["Interval", "LEVEL", "MIN_SOURCES", "N_BOOT", "OUTCOMES", "bootstrap_interval", "per_source",
           "sources_to_resolve", "verdict_of"]

LEVEL = 0.95
N_BOOT = 2000
# Below this many test sources the interval resamples samples (too few clusters to resample).
MIN_SOURCES = 4
OUTCOMES = ("teaches", "does not teach", "inconclusive")


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval.

    Attributes
    ----------
    mean : float
        Mean over the samples.
    low, high : float
        The interval's bounds.
    level : float
        Its coverage (0.95).
    n_samples, n_sources : int
        Samples and distinct sources behind it.
    unit : {"source", "sample"}
        What the bootstrap resampled.
    """

    mean: float
    low: float
    high: float
    level: float
    n_samples: int
    n_sources: int
    unit: str

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0

    def text(self, unit: str = "dB") -> str:
        """``+0.72 dB (95% interval +0.51 to +0.93)``."""
        return (f"{self.mean:+.2f} {unit} ({self.level:.0%} interval {self.low:+.2f} to {self.high:+.2f})")

    def to_json(self) -> dict:
        return asdict(self)


def bootstrap_interval(values: Sequence[float], sources: Sequence[str], seed: int = 0, n_boot: int = N_BOOT,
                       level: float = LEVEL, by_source: bool = True) -> Interval:
    """Mean of ``values`` with a percentile bootstrap interval over their ``sources``.

    Parameters
    ----------
    values : sequence of float
        One value per test sample (a PSNR gain in dB, or a paired difference of gains).
    sources : sequence of str
        The source of each sample (the unit resampled).
    seed : int
        Seed of the draws.
    n_boot : int
        Bootstrap draws.
    level : float
        Coverage of the interval, in (0, 1).
    by_source : bool
        Resample sources (when there are at least :data:`MIN_SOURCES`); False: resample samples.

    Returns
    -------
    Interval
        ``mean`` is the plain mean over samples; ``low``, ``high`` the
        ``(1 − level)/2`` and ``(1 + level)/2`` quantiles (numpy's linear
        interpolation) of the resampled means.

    Raises
    ------
    ValueError
        For no values, a length mismatch, a value that is not finite, or a bad ``level``/``n_boot``.

    Examples
    --------
    >>> iv = bootstrap_interval([1.0, 1.2, 0.8, 1.1, 0.9], ["a", "b", "c", "d", "e"])
    >>> round(iv.mean, 6), iv.low < 1.0 < iv.high, iv.unit
    (1.0, True, 'source')
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence, got shape {values.shape}")
    if len(sources) != values.size:
        raise ValueError(f"{values.size} values but {len(sources)} sources")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    names = sorted(set(sources))
    if by_source and len(names) >= MIN_SOURCES:
        unit = "source"
        position = {name: k for k, name in enumerate(names)}
        group = np.array([position[s] for s in sources])
        sums = np.bincount(group, weights=values, minlength=len(names))
        counts = np.bincount(group, minlength=len(names)).astype(np.float64)
    else:
        unit = "sample"
        sums, counts = values, np.ones_like(values)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, sums.size, size=(n_boot, sums.size))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    low, high = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return Interval(float(values.mean()), float(low), float(high), float(level), int(values.size), len(names), unit)


def per_source(values: Sequence[float], sources: Sequence[str], seed: int = 0) -> dict[str, Interval]:
    """Each source's mean with an interval from resampling its own samples (sorted by source).

    A source with one sample has a zero-width interval at its value.
    """
    out = {}
    for k, name in enumerate(sorted(set(sources))):
        mine = [v for v, s in zip(values, sources) if s == name]
        out[name] = bootstrap_interval(mine, [name] * len(mine), seed=seed + k, by_source=False)
    return out


def verdict_of(interval: Interval, threshold: float) -> str:
    """``teaches`` (lower bound above ``threshold``), ``does not teach`` (upper bound below it) or ``inconclusive``."""
    if interval.low > threshold:
        return "teaches"
    if interval.high < threshold:
        return "does not teach"
    return "inconclusive"


def sources_to_resolve(interval: Interval, threshold: float) -> int | None:
    """About how many test sources would make an interval of this spread exclude ``threshold``.

    The half-width of a mean's interval shrinks as 1/√n: with n sources now,
    ``n · (half_width / |mean − threshold|)²`` sources put the threshold just
    outside it, if the mean stays where it is. ``None`` when the mean sits on
    the threshold (no number of sources separates them).
    """
    distance = abs(interval.mean - threshold)
    if distance < 1e-9:
        return None
    n = interval.n_sources if interval.unit == "source" else interval.n_samples
    return max(n + 1, math.ceil(n * (interval.half_width / distance) ** 2 - 1e-9))  # not 41 for 40.000000001
