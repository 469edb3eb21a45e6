"""A built-in synthetic 240 fps clip, so the demo and the tests need no outside data.

Textured layers move by sub-pixel steps: a background panned by the camera and
two foreground objects with their own velocities (one accelerating), composited
with soft-edged masks. Motion per frame is small (about 0.3 to 3 px), as in
real 240 fps footage, so averaging tau frames makes visible, realistic blur.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from blursynth.budget import check_sample_memory
from blursynth.cache import cache_dir, cache_unwritable
from blursynth.errors import BlursynthError


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Multi-scale coloured noise plus hard-edged shapes (edges show blur best)."""
    tex = np.zeros((h, w, 3), np.float32)
    for sigma, weight in ((24, 0.5), (6, 0.3), (1.5, 0.2)):
        noise = rng.standard_normal((h, w, 3)).astype(np.float32)
        noise = cv2.GaussianBlur(noise, (0, 0), sigma)
        noise /= noise.std() + 1e-6
        tex += weight * noise
    tex = 0.5 + 0.18 * tex
    for _ in range(max(4, h * w // 6000)):
        colour = rng.uniform(0.05, 0.95, 3).tolist()
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(4, max(5, w // 8))), y0 + int(rng.integers(4, max(5, h // 8)))
        if rng.random() < 0.5:
            cv2.rectangle(tex, (x0, y0), (x1, y1), colour, -1)
        else:
            cv2.line(tex, (x0, y0), (x1, y1), colour, int(rng.integers(1, 4)))
    return np.clip(tex, 0, 1)


def _shift(image: np.ndarray, dx: float, dy: float, size: tuple[int, int],
           border: int = cv2.BORDER_REFLECT101) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(image, m, size, flags=cv2.INTER_CUBIC, borderMode=border, borderValue=0)


def _check(n_frames: int, size: tuple[int, int], seed: int, fit_margin: bool = False) -> int:
    """Refuse arguments that cannot make a clip; return the texture margin (pixels).

    The margin is the background beyond the frame on each side, for the pan.
    ``64 + 3 n`` by default, which the built-in clip, the sample datasets and
    the tests' oracles were made with; with ``fit_margin``, ``64 + ceil(0.45 n)``,
    what the pan needs (0.45 px per frame plus a 3 px wobble): a 363-frame clip
    then takes a 0.5-megapixel texture instead of 6.5 (seconds instead of
    tens; ``blursynth sample --clips``).
    """
    w, h = size
    if n_frames < 1:
        raise BlursynthError(f"--frames {n_frames}: must be at least 1")
    if w < 16 or h < 16:
        raise BlursynthError(f"--size {w}x{h}: frames must be at least 16x16 pixels")
    if seed < 0:
        raise BlursynthError(f"--seed {seed}: must be 0 or more")
    margin = 64 + (math.ceil(0.45 * n_frames) if fit_margin else n_frames * 3)
    # the float32 background texture (with its margin for the pan) and a few frame-size layers
    check_sample_memory(4 * 3 * ((h + 2 * margin) * (w + 2 * margin) + 8 * w * h),
                        f"--frames {n_frames}, --size {w}x{h}")
    return margin


def synthetic_frames(n_frames: int = 96, size: tuple[int, int] = (320, 180), seed: int = 0,
                     fit_margin: bool = False) -> Iterator[np.ndarray]:
    """Yield ``n_frames`` uint8 BGR frames of size ``size`` = (W, H) (``fit_margin``: see :func:`_check`)."""
    margin = _check(n_frames, size, seed, fit_margin)
    w, h = size
    rng = np.random.default_rng(seed)
    background = _texture(rng, h + 2 * margin, w + 2 * margin)
    objects = []
    for radius, velocity, accel in ((min(w, h) // 5, (2.1, 0.6), (0.0, 0.0)),
                                    (min(w, h) // 7, (-0.8, -0.4), (0.025, 0.01))):
        tex = _texture(rng, 2 * radius + 1, 2 * radius + 1)
        mask = np.zeros((2 * radius + 1, 2 * radius + 1), np.float32)
        if len(objects) == 0:
            cv2.circle(mask, (radius, radius), radius - 1, 1.0, -1)
        else:
            cv2.rectangle(mask, (2, 4), (2 * radius - 2, 2 * radius - 6), 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.7)[..., None]
        start = (float(rng.uniform(0.2, 0.6) * w), float(rng.uniform(0.25, 0.6) * h))
        objects.append((tex, mask, radius, start, velocity, accel))
    for t in range(n_frames):
        # The camera pans slowly with a small wobble (sub-pixel steps).
        cam_x = margin + 0.45 * t + 3.0 * np.sin(t / 17.0)
        cam_y = margin + 0.15 * t + 2.0 * np.cos(t / 23.0)
        frame = _shift(background, -cam_x, -cam_y, (w, h))
        for tex, mask, radius, (x0, y0), (vx, vy), (ax, ay) in objects:
            x = x0 + vx * t + 0.5 * ax * t * t - radius
            y = y0 + vy * t + 0.5 * ay * t * t - radius
            layer = _shift(tex, x, y, (w, h), cv2.BORDER_CONSTANT)
            alpha = np.clip(_shift(mask, x, y, (w, h), cv2.BORDER_CONSTANT), 0, 1)[..., None]
            frame = alpha * layer + (1 - alpha) * frame
        yield np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8)


def write_sample_clip(out: str | Path, n_frames: int = 96, size: tuple[int, int] = (320, 180),
                      seed: int = 0, video: bool = False, fps: float = 240.0, fit_margin: bool = False) -> Path:
    """Write the synthetic clip as numbered PNG frames in ``out`` (or ``out`` as an .avi).

    Videos use the lossless FFV1 codec when OpenCV has it, so frames decode exactly.
    ``fit_margin``: the texture margin the pan needs (see :func:`_check`).
    """
    out = Path(out)
    _check(n_frames, size, seed, fit_margin)  # before anything is created
    frames = synthetic_frames(n_frames, size, seed, fit_margin)
    if video:
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), fps, size)
        if not writer.isOpened():
            raise BlursynthError(f"{out}: OpenCV cannot write an FFV1 video here")
        for frame in frames:
            writer.write(frame)
        writer.release()
        return out
    out.mkdir(parents=True, exist_ok=True)
    for t, frame in enumerate(frames):
        if not cv2.imwrite(str(out / f"{t:06d}.png"), frame):
            raise BlursynthError(f"{out}: cannot write frames there")
    return out


def write_sample_clips(out: str | Path, n_clips: int, n_frames: int, size: tuple[int, int] = (320, 180),
                       seed: int = 0, video: bool = False, workers: int | None = None) -> list[Path]:
    """Write ``n_clips`` different synthetic clips into the folder ``out`` (``blursynth sample --clips``).

    Clip ``k`` is ``out/clip-KK`` (PNG frames) or ``out/clip-KK.avi``, made with
    seed ``seed + k`` (its own textures, objects and paths) and the texture
    margin its pan needs (``fit_margin``). The clips are written in parallel.

    Returns
    -------
    list of Path
        The clips, in order.
    """
    import joblib

    from blursynth.run.pool import local_workers

    if n_clips < 1:
        raise BlursynthError(f"--clips {n_clips}: must be at least 1")
    _check(n_frames, size, seed, fit_margin=True)  # before anything is created
    digits = max(2, len(str(n_clips - 1)))
    out = Path(out).absolute()  # the paths go to worker processes
    paths = [out / (f"clip-{k:0{digits}d}" + (".avi" if video else "")) for k in range(n_clips)]
    jobs = [joblib.delayed(write_sample_clip)(path, n_frames, size, seed + k, video=video, fit_margin=True)
            for k, path in enumerate(paths)]
    n_jobs = max(1, min(n_clips, workers or os.cpu_count() or 1))
    if n_jobs == 1:
        return [job[0](*job[1], **job[2]) for job in jobs]
    with local_workers():
        return joblib.Parallel(n_jobs=n_jobs)(jobs)


# The built-in clip as a --src fallback: frames as written by write_sample_clip's defaults.
SAMPLE_CLIP = "sample-240fps"


def cached_sample_clip() -> Path:
    """The built-in 240 fps clip (96 frames of 320x180, seed 0) as a frame folder in
    :func:`cache_dir`, written on first use.

    The frames are written to a temporary folder and renamed into place, so the
    folder is either complete or absent, and concurrent first uses are safe.
    """
    import shutil
    import tempfile

    final = cache_dir() / SAMPLE_CLIP
    if final.is_dir():
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{SAMPLE_CLIP}-", dir=final.parent))
    except OSError as exc:
        raise cache_unwritable(exc, "the built-in sample clip") from None
    try:
        write_sample_clip(tmp)
        tmp.rename(final)
    except OSError as exc:
        if not final.is_dir():  # another process did not win the race: a real failure
            raise cache_unwritable(exc, "the built-in sample clip") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
