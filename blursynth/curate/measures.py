"""Per-sample measures of a dataset: blur strength, clipping, motion.

``blursynth report`` shows them and ``blursynth filter`` selects on them; both
get them from :func:`measure_dataset`, which reads the samples through
:class:`blursynth.dataset.SampleIndex` in parallel (one joblib task per shard).

* **Blur strength**: PSNR (peak 255) and mean absolute difference (in 8-bit
  levels) of the blurred frames against the sharp frames of the same sample.
  Low PSNR / high MAD: strong blur.
* **Clipping**: the fraction of blurred pixels with a channel at 255
  (``clipped_high``: saturated, where averaging in linear light can no longer
  recover the true exposure) and at 0 (``clipped_low``).
* **Motion**: the mean displacement, in pixels per source frame, of the
  optical flow between consecutive frames of the sample, by the estimator that
  also gives ``meta``'s ``motion_mean`` (:func:`blursynth.highspeed.interpolate.estimator`:
  DIS refined to full resolution, its measured error in docs/report.md). With latent
  frames (``--latent K``) the pairs are consecutive latents of one exposure,
  ``(n - 1) / (K - 1)`` source frames apart, n being the frames averaged into
  the exposure (``tau``, or a panorama sample's ``n_frames``); without latents
  but with ``--seq-len`` L > 1 in a highspeed dataset, consecutive sharp frames,
  ``T`` source frames apart. A dataset without consecutive frames has no
  motion score (``None``): it is not guessed from the blur.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import cv2
import joblib
import numpy as np

from blursynth.highspeed.interpolate import displacement, flow
from blursynth.run.pool import local_workers
from blursynth.run.progress import progress_bar
from blursynth.dataset import SampleIndex, SampleRef, ShardFiles

# Smallest frame side DIS works on (its patches are 8 px; the coarsest pyramid level needs a few).
MIN_FLOW_SIDE = 16


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0,
         axis: int | tuple[int, ...] | None = None) -> float | np.ndarray:
    r"""Peak signal-to-noise ratio of ``a`` against ``b``: blursynth's one PSNR.

    .. math:: \mathrm{PSNR}(a, b) = 10 \log_{10} \frac{R^2}{\operatorname{mean}((a - b)^2)}

    The blur strength of ``report``/``filter`` uses it, and so does the
    evaluation of the reference models (:func:`reference_models.metrics.psnr`
    hands its tensors to it), so that every PSNR blursynth prints is this one.

    Parameters
    ----------
    a, b : ndarray
        Images of one shape (any dtype; computed in float64).
    data_range : float
        R, the value range (255 for 8-bit images, 1 for images in [0, 1]).
    axis : int or tuple of int, optional
        The axes the squared error is averaged over; ``None``: all of them.

    Returns
    -------
    float or ndarray
        PSNR in dB: a float for ``axis=None``, else float64 over the axes
        left; ``inf`` where ``a`` equals ``b``.

    Examples
    --------
    >>> psnr(np.zeros((2, 4, 4, 3), np.uint8), np.full((2, 4, 4, 3), 255, np.uint8))
    0.0
    """
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2, axis=axis)
    if axis is None:
        mse = float(mse)
        return math.inf if mse == 0 else 10.0 * math.log10(data_range ** 2 / mse)
    with np.errstate(divide="ignore"):  # mse 0: inf dB, as for axis=None
        return 10.0 * np.log10(data_range ** 2 / mse)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in 8-bit levels."""
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def clipped_fractions(frames: np.ndarray) -> tuple[float, float]:
    """(fraction of pixels with a channel at 255, fraction with a channel at 0) of uint8 [..., 3] frames."""
    return float(np.mean(np.any(frames == 255, axis=-1))), float(np.mean(np.any(frames == 0, axis=-1)))


def flow_displacement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean length in px of the optical flow (:func:`blursynth.highspeed.interpolate.flow`) from RGB frame ``a`` to ``b``."""
    return float(np.mean(displacement(flow(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)))))


def _per_frame(meta: dict, key: str, j: int):
    value = np.ravel(meta[key])
    return float(value[j] if value.size > 1 else value[0])


def consecutive_pairs(arrays: dict[str, np.ndarray], meta: dict) -> tuple[str | None, list[tuple]]:
    """The sample's pairs of consecutive frames and their spacing in source frames.

    Returns
    -------
    (source of the pairs, [(frame a, frame b, source frames between them), ...])
        The source is ``"latent"``, ``"sharp sequence"`` or ``None`` (no pairs).
    """
    if "latent" in arrays and arrays["latent"].shape[1] >= 2:
        latent = arrays["latent"]
        k = latent.shape[1]
        key = "tau" if "tau" in meta else "n_frames" if "n_frames" in meta else None
        if key is None:
            return None, []
        pairs = []
        for j in range(latent.shape[0]):
            spacing = (_per_frame(meta, key, j) - 1) / (k - 1)
            pairs += [(latent[j, i], latent[j, i + 1], spacing) for i in range(k - 1)]
        return "latent", pairs
    sharp = arrays["sharp"]
    if sharp.shape[0] >= 2 and "T" in meta:
        return "sharp sequence", [(sharp[j], sharp[j + 1], float(meta["T"])) for j in range(sharp.shape[0] - 1)]
    return None, []


def motion_score(arrays: dict[str, np.ndarray], meta: dict) -> float | None:
    """Mean flow displacement between consecutive frames, px per source frame (None: no pairs)."""
    _, pairs = consecutive_pairs(arrays, meta)
    pairs = [p for p in pairs if min(p[0].shape[:2]) >= MIN_FLOW_SIDE and p[2] > 0]
    if not pairs:
        return None
    return float(np.mean([flow_displacement(a, b) / spacing for a, b, spacing in pairs]))


def sample_measures(arrays: dict[str, np.ndarray], meta: dict, motion: bool = True) -> dict:
    """Every measure of one sample (see the module docstring)."""
    blur, sharp = arrays["blur"], arrays["sharp"]
    high, low = clipped_fractions(blur)
    out = {"psnr": psnr(blur, sharp), "mad": mean_abs_diff(blur, sharp), "clipped_high": high, "clipped_low": low}
    if motion:
        out["motion"] = motion_score(arrays, meta)
    return out


def _index(dataset: str | Path | SampleIndex) -> SampleIndex:
    return dataset if isinstance(dataset, SampleIndex) else SampleIndex(dataset)


def has_consecutive_frames(dataset: str | Path | SampleIndex) -> bool:
    """Whether any shard of ``dataset`` holds frames a motion score can use (see :func:`consecutive_pairs`)."""
    for info in _index(dataset).shards.values():
        shapes, keys = info.shapes, set(info.meta)
        if "latent" in shapes and shapes["latent"][1] >= 2 and keys & {"tau", "n_frames"}:
            return True
        if "sharp" in shapes and shapes["sharp"][0] >= 2 and "T" in keys:
            return True
    return False


def _measure_shard(root: Path, items: list[tuple[SampleRef, dict, list[str]]],
                   motion: bool) -> list[tuple[int, dict]]:
    """Worker: the measures of samples of one shard, ``(reference, meta, frame arrays to read)`` each."""
    cv2.setNumThreads(1)
    out = []
    with ShardFiles(root) as files:  # this job's own handles, closed when it ends
        for ref, meta, names in items:
            arrays = {n: files.read(ref.file, n, (ref.row,)) for n in names}
            out.append((ref.index, sample_measures(arrays, meta, motion)))
    return out


def measure_dataset(dataset: str | Path | SampleIndex, indices: Iterable[int] | None = None, *,
                    motion: bool = True, workers: int | None = None, quiet: bool = True) -> dict[int, dict]:
    """Measures of every sample of ``dataset`` (or of ``indices``), by global index.

    One joblib task per shard; the values do not depend on ``workers``.
    """
    index = _index(dataset)
    keep = None if indices is None else set(indices)
    by_shard: dict[str, list] = {}
    for ref in index.refs:
        if keep is None or ref.index in keep:
            names = [n for n in ("blur", "sharp", "latent") if n in index.shards[ref.file].shapes]
            by_shard.setdefault(ref.file, []).append((ref, index.meta(ref), names))
    jobs = [(index.root, items) for items in by_shard.values()]
    results: dict[int, dict] = {}
    n_jobs = min(workers or joblib.cpu_count(), max(1, len(jobs)))
    with progress_bar(sum(len(r) for _, r in jobs), 0, quiet, "measure") as bar:
        if n_jobs == 1:
            done = (_measure_shard(p, r, motion) for p, r in jobs)
        else:
            with local_workers():  # the pool is set up here; results are read below
                done = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                    joblib.delayed(_measure_shard)(p, r, motion) for p, r in jobs)
        for part in done:
            results.update(part)
            bar.update(len(part))
    return dict(sorted(results.items()))
