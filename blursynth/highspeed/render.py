"""Render: one :class:`~blursynth.highspeed.plan.HighspeedSpec` -> one sample (Kim et al. 2017, Eq. 1).

The maths is in :mod:`blursynth.highspeed`'s docstring and docs/highspeed.md.
"""

from __future__ import annotations

import cv2
import numpy as np

import blursynth.highspeed.interpolate as interpolate
from blursynth.dataset import Sample, rendition_array
from blursynth.highspeed.decode import FrameStream
from blursynth.highspeed.plan import HighspeedSpec
from blursynth.realism import changes_linear, clip_mask, compress, degrade_linear
from blursynth.response import Response, parse_response
from blursynth.run.worker import Worker


def latent_offsets(tau: int, k: int) -> list[int]:
    """Offsets ``j`` of the ``K`` latent frames within an exposure (first and last included).

    Parameters
    ----------
    tau : int
        Frames in the exposure.
    k : int
        Latent frames, ``K >= 2`` with ``K - 1`` dividing ``tau - 1``.

    Returns
    -------
    list of int
    """
    return [i * (tau - 1) // (k - 1) for i in range(k)]


def render(spec: HighspeedSpec, worker: Worker | None = None) -> Sample:
    """Render one sample (see the module docstring for the maths).

    With further renditions (``spec.renditions``, a ``--response`` list), each
    exposure window is decoded once and averaged once per curve, each curve
    with its own g and g^-1: a rendition is Eq. 1 under that curve, so its
    tones match the sharp frame as a single-curve run with that curve would
    (GoPro's ``blur`` is the plain mean of the 8-bit frames, not the
    gamma-linearized mean stored linearly). What does not depend on the curve
    is done once: decoding, the sharp and latent frames, optical flow, the
    clip mask and the realism draws (the same noise field for every curve).

    Parameters
    ----------
    spec : HighspeedSpec
        The sample; it alone decides the content.
    worker : Worker, optional
        Threads for decoding ahead and the state kept between samples (see
        :mod:`blursynth.run.worker`); None renders serially on its own.

    Returns
    -------
    Sample
        ``blur``/``sharp`` uint8 RGB ``[L, H, W, 3]``, ``blur_<kind>`` (shaped
        as ``blur``) per further rendition, ``latent`` ``[L, K, H, W, 3]``
        with ``--latent K``, and the meta fields of docs/format.md.
    """
    response = parse_response(spec.response)
    curves = {"blur": response, **{rendition_array(r.family): r for r in map(parse_response, spec.renditions)}}
    frames = FrameStream(spec, worker or Worker())
    mid = (spec.tau - 1) // 2
    latent_at = {j: i for i, j in enumerate(latent_offsets(spec.tau, spec.latent))} if spec.latent else {}
    w, h = spec.resize or spec.size
    blurs = {name: np.empty((spec.seq_len, h, w, 3), np.uint8) for name in curves}
    sharp = np.empty_like(blurs["blur"])
    latent = np.empty((spec.seq_len, spec.latent, h, w, 3), np.uint8) if spec.latent else None
    linear = np.empty((spec.size[1], spec.size[0], 3), np.float32) if spec.resize else None

    def finish(image: np.ndarray, dst: np.ndarray) -> None:
        """BGR source-size uint8 image -> RGB output ``dst``, resized in linear light."""
        if spec.resize:
            lin = cv2.resize(response.linearize(image), spec.resize, interpolation=cv2.INTER_AREA)
            image = response.encode(lin)
        cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=dst)

    # Realism (blursynth.realism): drawn from the sample's own named streams.
    params = spec.realism.draw(spec.seed)
    degrade = changes_linear(params)
    interp = spec.interpolate > 1 and spec.tau > 1
    measure = spec.motion or spec.interpolate > 1  # the flows are needed anyway
    mask = np.empty((spec.size[1], spec.size[0], 3), np.float32) if params.get("saturation") else None
    if (degrade or interp) and linear is None:
        linear = np.empty((spec.size[1], spec.size[0], 3), np.float32)
    moved_sum, moved_count, moved_max = 0, 0, 0.0

    def blurred(curve: Response, window: list, pair_flows: list, clipped, n: int) -> np.ndarray:
        """Exposure ``n`` of the window under ``curve``: BGR uint8 at the output size (Eq. 1)."""
        if degrade or interp:
            if interp:
                interpolate.interpolated_mean(window, spec.interpolate, curve, pair_flows, out=linear)
            else:
                curve.average(window, linear_out=linear)
            lin = cv2.resize(linear, spec.resize, interpolation=cv2.INTER_AREA) if spec.resize else linear
            return curve.encode(degrade_linear(lin, params, spec.seed, n, clipped) if degrade else lin)
        if spec.resize:
            # Resampling is linear, so resizing the linear mean equals averaging
            # the resized frames, at one resize per exposure instead of tau.
            curve.average(window, linear_out=linear)
            return curve.encode(cv2.resize(linear, spec.resize, interpolation=cv2.INTER_AREA))
        return curve.average(window)  # Eq. 1

    # Frames stream in exposure order; one exposure window (tau frames) is held.
    stream = frames.stream([spec.start + n * spec.T + j for n in range(spec.seq_len) for j in range(spec.tau)])
    for n in range(spec.seq_len):
        window = [next(stream) for _ in range(spec.tau)]
        finish(window[mid], sharp[n])
        for j, k in latent_at.items():
            finish(window[j], latent[n, k])
        pair_flows = []
        if measure:  # ghosting control: optical flow between consecutive source frames
            pair_flows = [interpolate.flows(a, b) for a, b in zip(window[:-1], window[1:])]
            for f01, _ in pair_flows:
                moved = interpolate.displacement(f01)
                moved_sum += interpolate.exact_sum(moved)
                moved_count += moved.size
                moved_max = max(moved_max, float(moved.max()))
        clipped = None
        if mask is not None and degrade:  # the clip mask averaged over the exposure (RSBlur)
            mask.fill(0.0)
            for frame in window:
                cv2.add(mask, clip_mask(frame), dst=mask)
            clipped = mask * np.float32(1.0 / len(window))
            if spec.resize:
                clipped = cv2.resize(clipped, spec.resize, interpolation=cv2.INTER_AREA)
        for name, curve in curves.items():
            cv2.cvtColor(blurred(curve, window, pair_flows, clipped, n), cv2.COLOR_BGR2RGB, dst=blurs[name][n])
            if "jpeg_quality" in params:
                blurs[name][n] = compress(blurs[name][n], params["jpeg_quality"])
        del window

    arrays = {**blurs, "sharp": sharp}
    if latent is not None:
        arrays["latent"] = latent
    meta = {"index": spec.index, "source": spec.source, "start": spec.start, "tau": spec.tau,
            "T": spec.T, "fps": float(spec.fps), "seed": spec.seed, "repeat": spec.repeat, **params}
    if measure:  # px per source frame (0 for tau = 1: no pair of frames)
        meta["motion_mean"] = moved_sum / interpolate.SUM_UNITS / moved_count if moved_count else 0.0
        meta["motion_max"] = moved_max
    return Sample(arrays, meta)
