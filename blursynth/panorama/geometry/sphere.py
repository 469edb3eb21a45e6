"""The sphere and the camera: equirect pixel <-> (lon, lat) <-> direction, the padded
panorama, pinhole camera rays and their projection (conventions in
:mod:`blursynth.panorama.geometry`)."""

from __future__ import annotations

import functools
import math

import numpy as np

# Border added around the equirect image by :func:`pad_equirect`; one pixel is
# what bilinear interpolation of coordinates in [-0.5, W - 0.5] needs.
PAD = 1

# Columns added on each side of the seam, as a fraction of the width, in the
# panoramas the renderer samples (:func:`seam_pad`): a view whose longitudes
# span up to this much on either side of its centre is sampled without wrapping
# coordinates (:class:`InterpolatedMapBuilder`).
SEAM_PAD_FRACTION = 0.25


# ---------------------------------------------------------------- equirect
def equirect_to_lonlat(col, row, height: int, width: int):
    """Longitude and latitude (radians) of equirect pixel coordinates.

    ``col``/``row`` are OpenCV pixel coordinates (pixel centres on integers).
    """
    col = np.asarray(col, dtype=np.float64)
    row = np.asarray(row, dtype=np.float64)
    lon = 2.0 * np.pi * (col + 0.5) / width - np.pi
    lat = np.pi / 2 - np.pi * (row + 0.5) / height
    return lon, lat


def lonlat_to_equirect(lon, lat, height: int, width: int):
    """Inverse of :func:`equirect_to_lonlat`: OpenCV pixel coordinates ``(col, row)``."""
    col = width * (np.asarray(lon) + np.pi) / (2.0 * np.pi) - 0.5
    row = height * (np.pi / 2 - np.asarray(lat)) / np.pi - 0.5
    return col, row


def lonlat_to_direction(lon, lat) -> np.ndarray:
    """Unit direction ``(cos phi sin lambda, sin phi, cos phi cos lambda)``, shape ``[..., 3]``."""
    lon = np.asarray(lon)
    lat = np.asarray(lat)
    c = np.cos(lat)
    return np.stack([c * np.sin(lon), np.sin(lat), c * np.cos(lon)], axis=-1)


def direction_to_lonlat(d):
    """Longitude in [-pi, pi] and latitude in [-pi/2, pi/2] of directions ``[..., 3]`` (any length)."""
    d = np.asarray(d)
    lon = np.arctan2(d[..., 0], d[..., 2])
    lat = np.arctan2(d[..., 1], np.hypot(d[..., 0], d[..., 2]))
    return lon, lat


def pad_equirect(image: np.ndarray, pad: int = PAD, pad_x: int | None = None) -> np.ndarray:
    """Add border pixels that continue the sphere across its edges.

    Columns wrap around the longitude seam. The row above the first row lies
    across the north pole, at the same latitude as the first row and the
    opposite longitude: it is the first row shifted by ``W / 2`` (likewise at
    the south pole). ``W`` must be even (every 2:1 panorama is).

    Parameters
    ----------
    image : ndarray [H, W, C] or [H, W]
    pad : int
        Rows added above and below.
    pad_x : int, optional
        Columns added left and right (default ``pad``; at most ``W``).

    Returns
    -------
    ndarray [H + 2 pad, W + 2 pad_x, ...] of the same dtype; pixel ``(row, col)``
    of ``image`` is at ``(row + pad, col + pad_x)``.
    """
    h, w = image.shape[:2]
    pad_x = pad if pad_x is None else int(pad_x)
    if w % 2:
        raise ValueError(f"pad_equirect: width must be even, got {w}")
    if not 0 <= pad < h:
        raise ValueError(f"pad_equirect: pad must be in [0, {h - 1}], got {pad}")
    if not 0 <= pad_x <= w:
        raise ValueError(f"pad_equirect: pad_x must be in [0, {w}], got {pad_x}")
    rows = [np.roll(image[pad - 1::-1], w // 2, axis=1) if pad else image[:0],
            image,
            np.roll(image[:h - pad - 1:-1], w // 2, axis=1) if pad else image[:0]]
    tall = np.concatenate(rows, axis=0)
    if pad_x:
        tall = np.concatenate([tall[:, w - pad_x:], tall, tall[:, :pad_x]], axis=1)
    return np.ascontiguousarray(tall)


def seam_pad(width: int) -> int:
    """Columns the renderer's panoramas carry on each side (:data:`SEAM_PAD_FRACTION` of ``width``)."""
    return max(PAD, int(width * SEAM_PAD_FRACTION))


def padded_layout(shape) -> tuple[tuple[int, int], int]:
    """``((H, W), pad_x)`` of a 2:1 panorama padded by :func:`pad_equirect` with
    :data:`PAD` rows, from the padded array's shape."""
    ph = int(shape[0]) - 2 * PAD
    pw = 2 * ph
    pad_x = (int(shape[1]) - pw) // 2
    if ph <= 0 or pad_x < 0 or pw + 2 * pad_x != int(shape[1]):
        raise ValueError(f"padded_layout: {tuple(shape[:2])} is not a padded 2:1 panorama")
    return (ph, pw), pad_x


# ----------------------------------------------------------------- camera
def focal_length(width: int, fov_deg: float) -> float:
    """Focal length in pixels, ``f = (W / 2) / tan(fov / 2)`` (horizontal fov)."""
    return (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def max_flow_per_radian(size: tuple[int, int], fov_deg: float) -> float:
    """Largest image speed, in pixels per radian, that any camera rotation causes.

    A rotation with unit angular velocity about an axis of the camera moves a
    pixel at distance ``r`` from the principal point at a speed of at most
    ``f + r^2 / f``: the radial part is ``(f + r^2 / f) w_perp`` (the derivative
    of ``r = f tan(alpha)``), the tangential part ``f w_radial + r w_z`` is at
    most ``sqrt(f^2 + r^2)``, and ``f + r^2/f >= sqrt(f^2 + r^2)``. The bound is
    reached at the corner pixel centres, ``r^2 = ((W-1)/2)^2 + ((H-1)/2)^2``.
    """
    h, w = size
    f = focal_length(w, fov_deg)
    r2 = ((w - 1) / 2.0) ** 2 + ((h - 1) / 2.0) ** 2
    return f + r2 / f


@functools.lru_cache(maxsize=16)
def camera_rays(size: tuple[int, int], fov_deg: float) -> np.ndarray:
    """Unit camera rays of every pixel, planar float32 ``[3, H * W]`` (read-only).

    Ray of pixel ``(x, y)``: ``((x + 0.5 - W/2) / f, -(y + 0.5 - H/2) / f, 1)``
    normalized. Planar layout so that one ``3x3 @ 3xN`` product rotates them all.
    """
    h, w = size
    f = focal_length(w, fov_deg)
    x = (np.arange(w, dtype=np.float64) + 0.5 - w / 2.0) / f
    y = -(np.arange(h, dtype=np.float64) + 0.5 - h / 2.0) / f
    xx, yy = np.meshgrid(x, y)
    rays = np.stack([xx, yy, np.ones_like(xx)]).reshape(3, -1)
    rays /= np.linalg.norm(rays, axis=0)
    rays = rays.astype(np.float32)
    rays.setflags(write=False)
    return rays


def project(directions, size: tuple[int, int], fov_deg: float):
    """Pixel coordinates ``(x, y)`` (OpenCV convention) of camera-frame directions ``[..., 3]``.

    The inverse of :func:`camera_rays`; directions behind the camera give
    meaningless values (check ``z > 0``).
    """
    h, w = size
    f = focal_length(w, fov_deg)
    d = np.asarray(directions, dtype=np.float64)
    x = f * d[..., 0] / d[..., 2] + w / 2.0 - 0.5
    y = -f * d[..., 1] / d[..., 2] + h / 2.0 - 0.5
    return x, y
