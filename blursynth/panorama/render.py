"""Render: one :class:`~blursynth.panorama.plan.PanoramaSpec` -> blur, sharp and latent frames.

Every frame is one bilinear lookup of the linear panorama (cached per worker,
:func:`blursynth.panorama.load.load_panorama`) through maps built from the
rotated camera rays (:class:`blursynth.panorama.geometry.InterpolatedMapBuilder`), accumulated in
float32 linear light and encoded once through the response curve. The
lookups run on OpenCV (:class:`CpuViews`) or, with ``--device cuda``, on torch
(:class:`blursynth.panorama.torch_render.TorchViews`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import cv2
import numpy as np

import blursynth.panorama.geometry as geometry
from blursynth.panorama.plan import PanoramaSpec
from blursynth.realism import changes_linear, compress, degrade_linear
from blursynth.response import parse_response
from blursynth.dataset import Sample
from blursynth.panorama.load import load_panorama
from blursynth.run.worker import Worker

# Working set of one band of rows in CpuViews.render, well inside an L3 cache.
BAND_BYTES = 4 << 20

# Panoramas a worker loads ahead at most (load_panorama's cache keeps four).
AHEAD = 2

# Median luminance of the sharp frame after exposure (a mid-grey card).
MIDDLE_GREY = 0.18


def render_view(pano: np.ndarray, q: np.quaternion, size: tuple[int, int], fov: float) -> np.ndarray:
    """One pinhole view of a padded linear panorama.

    Parameters
    ----------
    pano : ndarray
        A :func:`~blursynth.panorama.load.load_panorama` array (or any image
        padded by :func:`blursynth.panorama.geometry.pad_equirect`).
    q : np.quaternion
        World <- camera orientation.
    size : (int, int)
        ``(H, W)`` of the camera.
    fov : float
        Horizontal field of view in degrees.

    Returns
    -------
    ndarray
        float32 ``[H, W, C]``, sampled bilinearly through the renderer's maps
        (:class:`blursynth.panorama.geometry.InterpolatedMapBuilder`; exact maps when the
        panorama carries too few seam columns for them).
    """
    hw, pad_x = geometry.padded_layout(pano.shape)
    map_x, map_y = geometry.InterpolatedMapBuilder(size, fov, hw, pad_x)(geometry.rotation_matrix(q))
    return cv2.remap(pano, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class CpuViews:
    """``cv2.remap`` renderer reusing its map and frame buffers.

    Maps come from :class:`blursynth.panorama.geometry.InterpolatedMapBuilder` (exact
    on a coarse grid, upsampled; exact near the poles).

    Parameters
    ----------
    pano : ndarray
        float32 ``[H + 2, W + 2 pad_x, C]``, a padded linear panorama
        (:func:`blursynth.panorama.load.load_panorama`).
    size : (int, int)
        ``(H, W)`` of the camera.
    fov : float
        Horizontal field of view in degrees.
    """

    def __init__(self, pano: np.ndarray, size: tuple[int, int], fov: float,
                 maps: geometry.InterpolatedMapBuilder | None = None):
        self.pano = pano
        hw, pad_x = geometry.padded_layout(pano.shape)
        self.maps = maps or geometry.InterpolatedMapBuilder(size, fov, hw, pad_x)
        self.frame = np.empty((*size, pano.shape[2]), np.float32)
        # rows per band: the band's sum, view, kept view and maps within BAND_BYTES
        per_row = size[1] * (3 * 4 * pano.shape[2] + 8)
        self.band_rows = max(8, BAND_BYTES // per_row // 8 * 8)

    def render(self, rotations: np.ndarray, keep: list[bool]):
        """Sum of the views of ``rotations`` and a copy of the ones marked in ``keep``.

        Parameters
        ----------
        rotations : ndarray
            ``[n, 3, 3]`` world <- camera matrices.
        keep : list of bool
            Which views to return besides the sum.

        Returns
        -------
        total : ndarray
            float32 ``[H, W, C]``, the sum of the ``n`` views.
        kept : dict of int to ndarray
            The kept views by position in ``rotations``.
        """
        h = self.frame.shape[0]
        plan = self.maps.plan(rotations)
        total = np.zeros_like(self.frame)
        kept = {i: np.empty_like(self.frame) for i in range(len(plan)) if keep[i]}
        # Band by band of rows, every view: the band's sum, view and maps stay
        # within BAND_BYTES. (Measured at 720p on the 2-core container: bands of
        # 1 to 8 MB and one whole-frame band take the same time; this loop is
        # 1.2x faster than the previous whole-frame loop, which copied each kept
        # view into a new array, for reasons not pinned down.)
        for y0 in range(0, h, self.band_rows):
            y1 = min(h, y0 + self.band_rows)
            acc, view = total[y0:y1], self.frame[:y1 - y0]
            for i, entry in enumerate(plan):
                map_x, map_y = self.maps.band(entry, y0, y1)
                out = acc if i == 0 else view  # the first view is the sum so far
                cv2.remap(self.pano, map_x, map_y, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REPLICATE)
                if i:
                    cv2.add(acc, out, dst=acc)
                if keep[i]:
                    kept[i][y0:y1] = out
        return total, kept


def _source_key(spec: PanoramaSpec) -> tuple:
    return (spec.path, spec.dynamic_range, spec.response, spec.pano_width, spec.source)


def _load(spec: PanoramaSpec, worker: Worker) -> np.ndarray:
    """The spec's panorama (:func:`~blursynth.panorama.load.load_panorama`).

    A worker with a spare thread (``worker.threads > 1``) meanwhile loads the
    panoramas of the specs it renders next (``worker.upcoming``) on up to
    ``min(threads - 1, AHEAD)`` loader threads, so that decoding a large panorama overlaps
    rendering the current one. A failed load ahead is forgotten: the load in
    this thread raises the same one-line error when its spec comes.
    """
    ahead = worker.state("panorama.ahead", dict)  # key -> Future of load_panorama
    key = _source_key(spec)
    pending = ahead.pop(key, None)
    if pending is not None:
        try:
            pending.result()  # decoded into load_panorama's per-process cache
        except Exception:  # noqa: BLE001 - raised again by the load below, in this thread
            pass
    pano = load_panorama(*key)
    if worker.threads > 1 and spec.device == "cpu":
        from concurrent.futures import ThreadPoolExecutor

        pool = worker.state("panorama.loader", lambda: ThreadPoolExecutor(
            max_workers=min(worker.threads - 1, AHEAD), thread_name_prefix="blursynth-panorama-loader"))
        wanted = [k for k in dict.fromkeys(_source_key(s) for s in worker.upcoming
                                           if isinstance(s, PanoramaSpec)) if k != key]
        for k in wanted[:min(worker.threads - 1, AHEAD)]:
            if k not in ahead:
                ahead[k] = pool.submit(load_panorama, *k)
        for k in [k for k in ahead if k not in wanted]:  # plans change (a skipped source): let go
            ahead.pop(k).cancel()
    return pano


def _views(spec: PanoramaSpec, pano: np.ndarray, worker: Worker):
    """The renderer of ``spec``'s device; on a GPU, kept by the worker between samples."""
    if spec.device == "cpu":
        # the map builder (its fixed ray grids) is kept for the worker's next sample
        hw, pad_x = geometry.padded_layout(pano.shape)
        builders = worker.state("panorama.map_builders", dict)
        key = (spec.shape, spec.fov, hw, pad_x)
        if key not in builders:
            if len(builders) >= 4:
                builders.pop(next(iter(builders)))
            builders[key] = geometry.InterpolatedMapBuilder(spec.shape, spec.fov, hw, pad_x)
        return CpuViews(pano, spec.shape, spec.fov, builders[key])
    from blursynth.panorama.torch_render import TorchViews

    # Keep the panorama on the device between samples (the numpy array is
    # held too, so its id stays unique while the entry lives).
    cache = worker.state("panorama.torch_views", dict)
    key = (id(pano), spec.shape, spec.fov, spec.device)
    if key not in cache:
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        cache[key] = (pano, TorchViews(pano, spec.shape, spec.fov, spec.device))
    return cache[key][1]


def _with_clip_mask(pano: np.ndarray, worker: Worker) -> np.ndarray:
    """An 8-bit panorama whose fourth channel (luminance, unused for 8-bit sources)
    is replaced by its clip mask: 1 where a channel is at the top of the 8-bit
    range (linear 1.0). Rendering it through the same views then averages the mask
    over the exposure at no extra lookups (saturation synthesis,
    :mod:`blursynth.realism`). Kept by the worker for the next sample."""
    cache = worker.state("panorama.clip_mask", dict)
    key = id(pano)
    if key not in cache:
        if len(cache) >= 2:
            cache.pop(next(iter(cache)))
        masked = np.array(pano, dtype=np.float32, copy=True)
        masked[..., 3] = (pano[..., :3].max(axis=2) >= 1.0 - 1e-6).astype(np.float32)
        cache[key] = (pano, masked)  # the source is held so that its id stays unique
    return cache[key][1]


def exposure_of(sharp_luma: np.ndarray) -> float:
    """Exposure that maps the median luminance of the sharp frame(s) to 0.18."""
    median = float(np.median(sharp_luma))
    if median <= 0:
        median = float(np.mean(sharp_luma))
    return MIDDLE_GREY / median if median > 0 else 1.0


def _offsets(count: int) -> list[Fraction]:
    """``count`` evenly spaced fractions of the exposure, ends included (one: the middle)."""
    if count == 1:
        return [Fraction(1, 2)]
    return [Fraction(i, count - 1) for i in range(count)]


def render(spec: PanoramaSpec, worker: Worker | None = None) -> Sample:
    """Render one sample (see the module docstring and docs/panorama.md).

    Parameters
    ----------
    spec : PanoramaSpec
        The sample; it alone decides the content.
    worker : Worker, optional
        Where map builders and a GPU renderer are kept between samples, and
        whose spare threads load the next panoramas (see :func:`_load` and
        :mod:`blursynth.run.worker`); None renders on its own.

    Returns
    -------
    Sample
        ``blur``/``sharp`` uint8 ``[L, H, W, 3]``, ``latent`` ``[L, K, H, W, 3]``
        and the meta fields of docs/format.md.
    """
    response = parse_response(spec.response)
    worker = worker or Worker()
    pano = _load(spec, worker)
    # Realism (blursynth.realism): drawn from the sample's own named streams.
    params = spec.realism.draw(spec.seed)
    saturate = spec.dynamic_range != "hdr" and params.get("saturation", 0.0) > 0  # HDR saturates by itself
    if saturate:
        pano = _with_clip_mask(pano, worker)
    views = _views(spec, pano, worker)
    h, w = spec.shape
    L, K = spec.seq_len, spec.latent
    half = Fraction(1, 2)

    # Pass 1: the sharp mid-exposure frames, which also set the exposure.
    sharp_rot = np.stack([spec.rotations(j, [half])[0] for j in range(L)])
    _, sharp_lin = views.render(sharp_rot, [True] * L)
    if spec.dynamic_range == "hdr":
        exposure = exposure_of(np.stack([sharp_lin[j][..., 3] for j in range(L)]))
    else:
        exposure = 1.0

    blur = np.empty((L, h, w, 3), np.uint8)
    sharp = np.empty_like(blur)
    latent = np.empty((L, K, h, w, 3), np.uint8) if K else None
    q0s, q1s, qmid, angles = [], [], [], []
    for j in range(L):
        n = spec.n_frames[j]
        blur_offsets = [Fraction(i, n - 1) for i in range(n)]
        latent_offsets = _offsets(K) if K else []
        # Render each distinct time once: latent frames usually fall on blur frames.
        latent_set = set(latent_offsets)
        keep = [o in latent_set for o in blur_offsets]
        extra = [o for o in latent_offsets if o not in blur_offsets and o != half]
        total, kept = views.render(spec.rotations(j, blur_offsets), keep)
        frames = {o: kept[i] for i, o in enumerate(blur_offsets) if i in kept}
        frames[half] = sharp_lin[j]
        if extra:
            _, more = views.render(spec.rotations(j, extra), [True] * len(extra))
            frames.update({o: more[i] for i, o in enumerate(extra)})
        if changes_linear(params):
            lin = total[..., :3] * np.float32(exposure / n)
            mask = np.repeat(total[..., 3:] * (1.0 / n), 3, axis=2) if saturate else None
            blur[j] = response.encode(degrade_linear(lin, params, spec.seed, j, mask))
        else:
            # The average in linear light; its 1/n and the exposure fold into the encoder's scale.
            blur[j] = response.encode(total, scale=exposure / n, channels=3)
        if "jpeg_quality" in params:
            blur[j] = compress(blur[j], params["jpeg_quality"])
        sharp[j] = response.encode(sharp_lin[j], scale=exposure, channels=3)
        for m, o in enumerate(latent_offsets):
            latent[j, m] = sharp[j] if o == half else response.encode(frames[o], scale=exposure, channels=3)
        q0 = spec.orientation(j)
        q1 = spec.orientation(j + spec.duty)
        q0s.append(geometry.as_wxyz(q0))
        q1s.append(geometry.as_wxyz(q1))
        qmid.append(geometry.as_wxyz(spec.orientation(j + spec.duty / 2)))
        angles.append(math.degrees(geometry.angle_between(q0, q1)))

    def per_frame(values):
        arr = np.asarray(values)
        return arr[0] if L == 1 else arr

    arrays = {"blur": blur, "sharp": sharp}
    if latent is not None:
        arrays["latent"] = latent
    meta = {
        "index": spec.index, "seed": spec.seed, "source": spec.source, "hdr": int(spec.dynamic_range == "hdr"),
        "q0": per_frame(q0s), "q1": per_frame(q1s), "q_sharp": per_frame(qmid),
        "angle_deg": per_frame(angles), "n_frames": per_frame(spec.n_frames),
        "yaw_deg": spec.yaw_deg, "pitch_deg": spec.pitch_deg,
        "omega0": np.asarray(spec.omega0), "omega1": np.asarray(spec.omega1),
        "fov_deg": spec.fov, "focal_px": geometry.focal_length(w, spec.fov), "exposure": float(exposure),
        **params,
    }
    if "saturation" in params and not saturate:
        meta["saturation"] = 0.0  # HDR source: saturates naturally, nothing added
    return Sample(arrays, meta)
