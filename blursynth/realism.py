"""Realism beyond averaging: saturation, sensor noise and JPEG compression.

Plain frame averaging gives blur that is too clean. Rim et al., "Realistic Blur
Synthesis for Learning Image Deblurring" (RSBlur, ECCV 2022, Sec. 4-5), add
three effects to the *blurred* image; both pipelines apply them here, to the
blurred image only, in this order:

1. **Saturation** (8-bit sources only). A pixel clipped in a source frame was
   brighter than the 8 bits could hold. With ``M`` the per-channel clip mask
   (code value 255) averaged over the frames of the exposure, and ``alpha``
   drawn from ``U(A, B)`` (``--saturation A,B``), the linear blurred image
   becomes ``x + alpha * M`` (RSBlur's saturation synthesis). HDR sources keep
   their real radiance and need nothing.
2. **Noise.** Heteroscedastic Gaussian noise, the usual approximation of
   Poisson-Gaussian sensor noise: ``y = x + sqrt(shot * x + read^2) * n``,
   ``n ~ N(0, 1)`` per pixel and channel (``--noise-shot``, ``--noise-read``;
   one value is fixed, two bound a uniform draw). Pixels saturated after step
   1 (``x >= 1``) stay noiseless, as in RSBlur's pipeline: a full well does not
   fluctuate.
3. Clip to [0, 1] and encode through the run's response curve.
4. **Compression.** ``--jpeg Q1,Q2`` re-encodes the encoded image as a JPEG at
   a quality drawn uniformly from the integers Q1..Q2 and keeps the decoded
   result (OpenCV/libjpeg, 4:2:0 chroma subsampling).

Every parameter of a sample is drawn from the sample's own seed through a named
sub-stream (:func:`blursynth.run.seeds.named_rng`), one per option, so turning an
option on shifts no other draw (not the clip's tau/T, not the camera path, not
another option's value). See docs/realism.md for the maths, the sources and the
deviations from RSBlur.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from blursynth.errors import BlursynthError
from blursynth.run.seeds import named_rng

# 8-bit code value that marks a clipped (saturated) source pixel.
CLIPPED = 255


def _check_range(option: str, values, low: float, high: float | None = None, integer: bool = False):
    if values is None:
        return None
    values = tuple(values)
    shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)
    if len(values) not in (1, 2):
        raise BlursynthError(f"--{option} {shown}: give one value (fixed) or two (a uniform range)")
    for v in values:
        if integer and int(v) != v:
            raise BlursynthError(f"--{option} {shown}: must be integers")
        if not math.isfinite(v) or v < low or (high is not None and v > high):
            bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise BlursynthError(f"--{option} {shown}: each value must be {bound}")
    if len(values) == 2 and values[0] > values[1]:
        raise BlursynthError(f"--{option} {shown}: the first value must not exceed the second")
    return tuple(int(v) for v in values) if integer else tuple(float(v) for v in values)


@dataclass(frozen=True)
class Realism:
    """Which realism effects a run applies, and their ranges.

    Parameters
    ----------
    noise_shot, noise_read : tuple of float, optional
        ``--noise-shot`` / ``--noise-read``: one value (fixed) or two (uniform
        range) of the shot coefficient and the read-noise standard deviation,
        in linear units of [0, 1]. Giving either turns noise on (the other is 0).
    saturation : tuple of float, optional
        ``--saturation A,B``: range of the factor ``alpha`` of the averaged clip mask.
    jpeg : tuple of int, optional
        ``--jpeg Q1,Q2``: range of the JPEG quality (1..100).

    Raises
    ------
    BlursynthError
        A value out of range; the message names the option.
    """

    noise_shot: tuple[float, ...] | None = None
    noise_read: tuple[float, ...] | None = None
    saturation: tuple[float, ...] | None = None
    jpeg: tuple[int, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "noise_shot", _check_range("noise-shot", self.noise_shot, 0.0, 1.0))
        object.__setattr__(self, "noise_read", _check_range("noise-read", self.noise_read, 0.0, 1.0))
        object.__setattr__(self, "saturation", _check_range("saturation", self.saturation, 0.0, 100.0))
        object.__setattr__(self, "jpeg", _check_range("jpeg", self.jpeg, 1, 100, integer=True))

    @property
    def noise(self) -> bool:
        """Whether noise is on (either coefficient given)."""
        return self.noise_shot is not None or self.noise_read is not None

    def draw(self, seed: int) -> dict:
        """The parameters of one sample, each from its own named sub-stream.

        Parameters
        ----------
        seed : int
            The sample's seed (``meta/seed``).

        Returns
        -------
        dict
            The keys of the options that are on, as recorded in ``meta``:
            ``noise_shot``, ``noise_read`` (float), ``saturation`` (float),
            ``jpeg_quality`` (int).
        """
        params = {}
        if self.noise:
            for key, bounds in (("noise_shot", self.noise_shot), ("noise_read", self.noise_read)):
                params[key] = _uniform(named_rng(seed, f"realism.{key}"), bounds or (0.0,))
        if self.saturation is not None:
            params["saturation"] = _uniform(named_rng(seed, "realism.saturation"), self.saturation)
        if self.jpeg is not None:
            low, high = self.jpeg[0], self.jpeg[-1]
            params["jpeg_quality"] = int(named_rng(seed, "realism.jpeg").integers(low, high + 1))
        return params


def _uniform(rng: np.random.Generator, bounds: tuple[float, ...]) -> float:
    return float(bounds[0]) if len(bounds) == 1 else float(rng.uniform(bounds[0], bounds[1]))


def changes_linear(params: dict) -> bool:
    """Whether the drawn parameters change the linear image (else the plain path is exact).

    Parameters
    ----------
    params : dict
        :meth:`Realism.draw`'s result.

    Returns
    -------
    bool
    """
    return (params.get("noise_shot", 0.0) > 0 or params.get("noise_read", 0.0) > 0
            or params.get("saturation", 0.0) > 0)


def clip_mask(frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Per-channel clip mask of an 8-bit frame: 1.0 where the code value is 255.

    Parameters
    ----------
    frame : ndarray
        uint8 ``[H, W, C]``.
    out : ndarray, optional
        float32 ``[H, W, C]`` to write into.

    Returns
    -------
    ndarray
        float32, 0 or 1.
    """
    # (numpy, not cv2, for the scalar ops: cv2 reads a Python scalar as (s, 0, 0, 0))
    if out is None:
        out = np.empty(frame.shape, np.float32)
    np.equal(frame, CLIPPED, out=out, casting="unsafe")
    return out


def degrade_linear(linear: np.ndarray, params: dict, seed: int, exposure: int = 0,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """Steps 1-3 of the module docstring on a linear blurred image (in place).

    Parameters
    ----------
    linear : ndarray
        float32 ``[H, W, C]``, the blurred image in linear light; overwritten.
    params : dict
        :meth:`Realism.draw`'s result.
    seed : int
        The sample's seed; the noise of exposure ``exposure`` comes from the
        named stream ``realism.noise.pixels`` keyed by it.
    exposure : int
        Which exposure of the sequence (frame of ``blur``) this is.
    mask : ndarray, optional
        float32 ``[H, W, C]``, the clip mask averaged over the exposure; None
        for HDR sources (no saturation synthesis).

    Returns
    -------
    ndarray
        ``linear``, now clipped to [0, 1].
    """
    alpha = params.get("saturation", 0.0)
    if alpha > 0 and mask is not None:
        cv2.scaleAdd(mask, alpha, linear, dst=linear)  # RSBlur: x + alpha * M
    shot, read = params.get("noise_shot", 0.0), params.get("noise_read", 0.0)
    if shot > 0 or read > 0:
        rng = named_rng(seed, "realism.noise.pixels", exposure)
        noise = rng.standard_normal(linear.shape, dtype=np.float32)
        # variance shot * x + read^2 (x clamped to the sensor's range), 0 where saturated
        # (numpy for scalar ops: cv2 reads a Python scalar as (s, 0, 0, 0))
        var = np.clip(linear, 0.0, 1.0)
        var *= np.float32(shot)
        var += np.float32(read * read)
        var[linear >= 1.0] = 0.0
        np.sqrt(var, out=var)
        noise *= var
        linear += noise
    np.clip(linear, 0.0, 1.0, out=linear)
    return linear


def compress(image_rgb: np.ndarray, quality: int) -> np.ndarray:
    """Step 4: the decoded JPEG of an RGB uint8 image at ``quality``.

    Parameters
    ----------
    image_rgb : ndarray
        uint8 ``[H, W, 3]``, RGB.
    quality : int
        JPEG quality, 1..100.

    Returns
    -------
    ndarray
        uint8 ``[H, W, 3]``, RGB.
    """
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV always encodes a uint8 image
        raise RuntimeError("JPEG encoding failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

