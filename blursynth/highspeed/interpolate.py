"""Ghosting control for high-speed footage: a motion measure and optical-flow frame interpolation.

Averaging ``tau`` frames of an object that moves ``d`` pixels per frame gives
``tau`` copies ``d`` pixels apart (ghosting) instead of a continuous streak
once ``d`` exceeds about a pixel. REDS (Nah et al., CVPRW 2019, Sec. 2) raised
120 fps to 1920 fps by interpolation before averaging for this reason.

**Motion measure.** Dense optical flow (OpenCV DIS, Kroeger et al., ECCV 2016;
the medium preset refined down to full resolution) between consecutive source frames of each exposure; the sample's mean and
maximum displacement, in px per source frame, go to ``meta`` (``motion_mean``,
``motion_max``). :func:`estimator` is blursynth's one flow estimator:
:mod:`blursynth.curate.measures` (``report``, ``filter --max-motion``) uses it too.

**Interpolation** (``--interpolate N``). Between consecutive source frames
``I0``, ``I1`` (times 0 and 1), ``N - 1`` frames at ``t = k / N`` are made by
bidirectional flow, warping and occlusion-aware blending (Jiang et al., "Super
SloMo", CVPR 2018, Eq. 1 and 4, with the learned refinement replaced by a
forward-backward consistency check):

* flows ``F01``, ``F10`` by DIS on the grey images;
* ``Ft0 = -(1 - t) t F01 + t^2 F10``, ``Ft1 = (1 - t)^2 F01 - t (1 - t) F10``
  (Eq. 4: linear motion, flows at ``t`` from the flows at the ends);
* ``g0 = I0(x + Ft0)``, ``g1 = I1(x + Ft1)`` by bilinear backward warping;
* visibility ``V0`` of ``I0``: 1 where ``F01`` and ``F10`` agree
  (``|F01(x) + F10(x + F01(x))|^2 <= 0.01 (|F01|^2 + |F10'|^2) + 0.5``, the
  check of Sundaram et al., ECCV 2010), else 0; the same for ``V1``;
  warped to ``t`` like the images;
* ``It = ((1 - t) V0 g0 + t V1 g1) / ((1 - t) V0 + t V1)``, or
  ``(1 - t) g0 + t g1`` where neither end sees the pixel (Eq. 1).

Warping and blending are done in linear light. An exposure of ``tau`` source
frames then averages ``(tau - 1) N + 1`` frames spread over the same time; the
mid-exposure target and the latent frames remain real source frames (they fall
on multiples of ``N``). DIS and the warps run on one OpenCV thread inside the
engine's workers, so the result is deterministic.
"""

from __future__ import annotations

import cv2
import numpy as np

from blursynth.response import Response


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame


def estimator() -> cv2.DISOpticalFlow:
    """The one optical-flow estimator of blursynth: DIS, medium preset, refined to full resolution.

    ``meta``'s ``motion_mean``/``motion_max``, ``--interpolate`` and the motion
    score of ``report`` and ``filter --max-motion`` (:mod:`blursynth.curate.measures`)
    all use it, so the two motion numbers are one estimator's. Measured mean
    endpoint error against known warps of a textured image (tests/blursynth/highspeed/test_flow.py,
    docs/report.md): 0.01 px for a (2.5, -1.5) px shift, 0.05 px for a
    (5.3, 3.7) px shift and for a 3 degree rotation with 3 % zoom.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # The preset stops at half resolution; at full resolution the flow of a small
    # moving object no longer bleeds into the static background around it
    # (measured: mean flow error 1.17 -> 0.38 px on tests/blursynth/highspeed/test_interpolate.py's scene),
    # and the error on a known shift drops from 0.04 to 0.01 px (tests/blursynth/highspeed/test_flow.py).
    dis.setFinestScale(0)
    return dis


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DIS flow (:func:`estimator`) from one 8-bit frame to the next.

    Parameters
    ----------
    a, b : ndarray
        uint8 ``[H, W, 3]`` (BGR) or ``[H, W]`` (grey; convert RGB frames with
        ``cv2.COLOR_RGB2GRAY`` first).

    Returns
    -------
    ndarray
        float32 ``[H, W, 2]``: ``a(x) ~ b(x + flow(x))``.
    """
    return estimator().calc(_grey(a), _grey(b), None)


def flows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward DIS flow (:func:`estimator`) between two 8-bit frames.

    Parameters
    ----------
    a, b : ndarray
        uint8 ``[H, W, 3]`` (BGR) or ``[H, W]``.

    Returns
    -------
    f01, f10 : ndarray
        float32 ``[H, W, 2]``: ``a(x) ~ b(x + f01(x))`` and ``b(x) ~ a(x + f10(x))``.
    """
    dis = estimator()
    ga, gb = _grey(a), _grey(b)
    return dis.calc(ga, gb, None), dis.calc(gb, ga, None)


# Units per pixel of :func:`exact_sum`.
SUM_UNITS = 4096


def exact_sum(values: np.ndarray) -> int:
    """Sum of non-negative float values in units of 1/4096, exactly.

    A float sum's last bits depend on how numpy splits it (buffer alignment
    differs between processes); integers add up exactly in any order, so the
    mean recorded in ``meta`` is the same for any ``--workers``.
    """
    return int(np.rint(values * np.float32(SUM_UNITS)).astype(np.int64).sum())


def displacement(flow: np.ndarray) -> np.ndarray:
    """Per-pixel displacement length of a flow field, px."""
    return cv2.magnitude(flow[..., 0], flow[..., 1])


class _Grid:
    """Pixel coordinates of an ``H x W`` image, for building remap maps."""

    def __init__(self, h: int, w: int):
        self.x, self.y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def warp(self, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``image(x + flow(x))``, bilinear, edges replicated."""
        return cv2.remap(image, self.x + flow[..., 0], self.y + flow[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)


def _visibility(grid: _Grid, f01: np.ndarray, f10: np.ndarray) -> np.ndarray:
    """1 where the forward flow of frame 0 is confirmed by the backward flow (Sundaram et al. 2010)."""
    back = grid.warp(f10, f01)
    err = np.sum((f01 + back) ** 2, axis=2)
    bound = 0.01 * (np.sum(f01 ** 2, axis=2) + np.sum(back ** 2, axis=2)) + 0.5
    return (err <= bound).astype(np.float32)


def interpolated_mean(frames: list[np.ndarray], factor: int, response: Response,
                      pair_flows: list[tuple[np.ndarray, np.ndarray]], out: np.ndarray) -> np.ndarray:
    """Linear mean of the source frames and the ``factor - 1`` frames interpolated between each pair.

    Parameters
    ----------
    frames : list of ndarray
        The exposure's uint8 source frames ``[H, W, 3]``.
    factor : int
        ``N`` of ``--interpolate N`` (>= 2).
    response : Response
        Linearizes the 8-bit frames.
    pair_flows : list of (f01, f10)
        :func:`flows` of each consecutive pair.
    out : ndarray
        float32 ``[H, W, 3]``; receives the mean.

    Returns
    -------
    ndarray
        ``out``: the mean of ``(len(frames) - 1) * factor + 1`` frames in linear light.
    """
    h, w = frames[0].shape[:2]
    grid = _Grid(h, w)
    linear = [response.linearize(f) for f in frames]
    out[...] = 0.0
    for lin in linear:
        cv2.add(out, lin, dst=out)
    for (i0, i1), (f01, f10) in zip(zip(linear[:-1], linear[1:]), pair_flows):
        v0, v1 = _visibility(grid, f01, f10), _visibility(grid, f10, f01)
        for k in range(1, factor):
            t = k / factor
            ft0 = (-(1 - t) * t) * f01 + (t * t) * f10  # Super SloMo Eq. 4
            ft1 = ((1 - t) ** 2) * f01 + (-t * (1 - t)) * f10
            g0, g1 = grid.warp(i0, ft0), grid.warp(i1, ft1)
            w0 = (1 - t) * grid.warp(v0, ft0)
            w1 = t * grid.warp(v1, ft1)
            total = w0 + w1
            seen = total > 1e-6
            w0 = np.where(seen, w0 / np.where(seen, total, 1.0), 1 - t)[..., None]  # Eq. 1
            w1 = np.where(seen, w1 / np.where(seen, total, 1.0), t)[..., None]
            cv2.add(out, (w0 * g0 + w1 * g1).astype(np.float32), dst=out)
    count = (len(frames) - 1) * factor + 1
    out *= np.float32(1.0 / count)
    return out
