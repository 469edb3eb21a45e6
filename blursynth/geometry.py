"""Sphere geometry for panorama rendering, as a chain of small named steps.

Conventions (docs/panorama.md draws them):

* World frame: x right, y up, z forward.
* An equirectangular image of ``H x W`` pixels has its pixel centre
  ``(col + 0.5, row + 0.5)`` at longitude ``lambda = 2 pi (col + 0.5) / W - pi``
  and latitude ``phi = pi / 2 - pi (row + 0.5) / H``, pointing along
  ``(cos phi sin lambda, sin phi, cos phi cos lambda)``. In OpenCV's pixel
  coordinates (pixel centres on integers) that is ``x = col``, ``y = row``.
* A pinhole camera of ``H x W`` pixels and horizontal field of view ``fov`` has
  focal length ``f = (W / 2) / tan(fov / 2)`` pixels; pixel ``(x, y)`` sees the
  ray ``((x + 0.5 - W/2) / f, -(y + 0.5 - H/2) / f, 1)`` in camera coordinates.
* A unit quaternion ``q`` (``numpy-quaternion``) is the camera's orientation: it
  turns camera rays into world directions, ``d = q r q*``.
* Euler angles ``(yaw, pitch, roll)`` are intrinsic rotations about the camera's
  y (up), -x and z (forward) axes, in that order: positive yaw looks right,
  positive pitch looks up, and ``euler_to_quat(u, v, 0)`` is the view of
  ``py360convert.e2p(img, fov, u, v, ...)``.

The steps: pixel <-> (lon, lat) <-> direction; camera rays; orientation
quaternions and the rotation path of a sample; and the maps for ``cv2.remap``
(:class:`MapBuilder`: rotated rays from two fixed pixel grids, OpenCV's
vectorized ``atan2`` refined by one correction step, scaled to equirect pixel
coordinates). :func:`pad_equirect` adds the border rows and
columns that make bilinear sampling wrap across the longitude seam and across
the poles, so that no sample is ever clamped.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import quaternion  # numpy-quaternion: registers np.quaternion

# Border added around the equirect image by :func:`pad_equirect`; one pixel is
# what bilinear interpolation of coordinates in [-0.5, W - 0.5] needs.
PAD = 1

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


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


def pad_equirect(image: np.ndarray, pad: int = PAD) -> np.ndarray:
    """Add ``pad`` pixels of border that continue the sphere across its edges.

    Columns wrap around the longitude seam. The row above the first row lies
    across the north pole, at the same latitude as the first row and the
    opposite longitude: it is the first row shifted by ``W / 2`` (likewise at
    the south pole). ``W`` must be even (every 2:1 panorama is).

    Parameters
    ----------
    image : ndarray [H, W, C] or [H, W]
    pad : int

    Returns
    -------
    ndarray [H + 2 pad, W + 2 pad, ...] of the same dtype; pixel ``(row, col)``
    of ``image`` is at ``(row + pad, col + pad)``.
    """
    h, w = image.shape[:2]
    if w % 2:
        raise ValueError(f"pad_equirect: width must be even, got {w}")
    if not 0 <= pad < h:
        raise ValueError(f"pad_equirect: pad must be in [0, {h - 1}], got {pad}")
    rows = [np.roll(image[pad - 1::-1], w // 2, axis=1) if pad else image[:0],
            image,
            np.roll(image[:h - pad - 1:-1], w // 2, axis=1) if pad else image[:0]]
    tall = np.concatenate(rows, axis=0)
    if pad:
        tall = np.concatenate([tall[:, w - pad:], tall, tall[:, :pad]], axis=1)
    return np.ascontiguousarray(tall)


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


# ------------------------------------------------------------- orientation
def axis_angle(axis, angle: float) -> np.quaternion:
    """Rotation by ``angle`` radians about ``axis`` (a 3-vector or ``"x"``/``"y"``/``"z"``)."""
    if isinstance(axis, str):  # (cos(a/2), sin(a/2) e_k) directly: planning calls this per sample
        half = 0.5 * float(angle)
        s = math.sin(half)
        x, y, z = (s * c for c in _AXES[axis])
        return np.quaternion(math.cos(half), x, y, z)
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    return quaternion.from_rotation_vector(a * angle)


def euler_to_quat(yaw: float, pitch: float, roll: float = 0.0) -> np.quaternion:
    """Intrinsic yaw (about y), pitch (about -x), roll (about z), radians.

    ``euler_to_quat(u, v)`` is the camera of ``py360convert.e2p`` with
    ``u_deg = degrees(u)``, ``v_deg = degrees(v)``: yaw turns right, pitch up.
    """
    return axis_angle("y", yaw) * axis_angle("x", -pitch) * axis_angle("z", roll)


def canonical(q: np.quaternion) -> np.quaternion:
    """The same rotation with ``w >= 0`` (its rotation vector then has angle <= pi)."""
    q = q.normalized()
    return -q if q.w < 0 else q


def rotation_angle(q: np.quaternion) -> float:
    """Angle (radians, in [0, pi]) of the rotation ``q``."""
    v = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z)
    return 2.0 * math.atan2(v, abs(q.w))


def angle_between(q0: np.quaternion, q1: np.quaternion) -> float:
    """Angle (radians) of the relative rotation ``q0^-1 q1``."""
    return rotation_angle(q0.conjugate() * q1)


def as_wxyz(q: np.quaternion) -> np.ndarray:
    """``[w, x, y, z]`` float64."""
    return quaternion.as_float_array(q).astype(np.float64)


def from_wxyz(values) -> np.quaternion:
    return quaternion.from_float_array(np.asarray(values, dtype=np.float64))


def rotation_matrix(q) -> np.ndarray:
    """float32 3x3 matrix of ``q`` (world <- camera); ``[..., 3, 3]`` for an array of quaternions."""
    return quaternion.as_rotation_matrix(q).astype(np.float32)


def path_rotvec(omega0, omega1, span: float, t):
    """Rotation vector ``r(t) = omega0 t + (omega1 - omega0) t^2 / (2 span)`` of the path.

    Its derivative changes linearly from ``omega0`` at ``t = 0`` to ``omega1``
    at ``t = span``; with ``omega1 == omega0`` it is ``omega0 t``. ``t`` may be
    a scalar (result ``[3]``) or an array (result ``[..., 3]``).
    """
    omega0 = np.asarray(omega0, dtype=np.float64)
    omega1 = np.asarray(omega1, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    return omega0 * t + (omega1 - omega0) * (t * t / (2.0 * span))


def path_orientation(q_start: np.quaternion, omega0, omega1, span: float, t):
    """Camera orientation at time ``t`` of the path ``q(t) = q_start exp(r(t) / 2)``.

    ``r(t)`` is :func:`path_rotvec`, in the camera frame of ``q_start``. With
    ``omega1 == omega0`` and ``|omega0| <= pi`` this is
    ``slerp(q_start, q_start exp(omega0 / 2), t)``. An array ``t`` gives an
    array of quaternions.
    """
    return q_start * quaternion.from_rotation_vector(path_rotvec(omega0, omega1, span, t))


def path_max_speed(omega0, omega1, span: float, t0: float, t1: float) -> float:
    """Largest ``|dr/dt|`` (radians per unit time) on ``[t0, t1]``.

    ``dr/dt`` is affine in ``t``, so its norm is convex and peaks at an end.
    Because ``exp`` is 1-Lipschitz from rotation vectors to rotations, the
    camera turns by at most this speed times the elapsed time.
    """
    omega0 = np.asarray(omega0, dtype=np.float64)
    omega1 = np.asarray(omega1, dtype=np.float64)
    return max(math.hypot(*(omega0 + (omega1 - omega0) * (t / span))) for t in (t0, t1))


# -------------------------------------------------------------------- maps
def equirect_pixel_affine(pano_hw: tuple[int, int], pad: int = PAD) -> tuple[float, float, float, float]:
    """Pixel coordinates in a padded equirect image from a ray's angles.

    ``x = sx atan2(d_x, d_z) + ox`` and ``y = sy acos(d_y) + oy`` with
    ``sx = W / 2 pi``, ``ox = W / 2 - 0.5 + pad``, ``sy = H / pi`` and
    ``oy = pad - 0.5`` (``d`` a unit world direction; :func:`direction_to_lonlat`
    and :func:`lonlat_to_equirect` written as one scale and shift per axis).

    Parameters
    ----------
    pano_hw : (int, int)
        ``(H, W)`` of the panorama before padding.
    pad : int
        Pixels added on every side by :func:`pad_equirect`.

    Returns
    -------
    sx, ox, sy, oy : float
    """
    ph, pw = pano_hw
    return pw / (2.0 * np.pi), pw / 2.0 - 0.5 + pad, ph / np.pi, pad - 0.5


def pixel_to_grid(scale: float, offset: float, n: int) -> tuple[float, float]:
    """Fold the pixel -> normalized step into an affine map ``x = scale a + offset``.

    ``torch.nn.functional.grid_sample`` with ``align_corners=True`` addresses
    pixel ``x`` of an axis of ``n`` pixels as ``g = 2 x / (n - 1) - 1``, so
    ``g = (2 scale / (n - 1)) a + (2 offset / (n - 1) - 1)``.

    Parameters
    ----------
    scale, offset : float
        The pixel-space map (see :func:`equirect_pixel_affine`).
    n : int
        Pixels along the axis of the (padded) image sampled.

    Returns
    -------
    scale, offset : float
        The same map in normalized coordinates.
    """
    return scale * 2 / (n - 1), offset * 2 / (n - 1) - 1


def refine_angle(angle: np.ndarray, x: np.ndarray, y: np.ndarray, inv_r: np.ndarray | None,
                 scratch: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """One correction step for an approximate ``angle = atan2(y, x)``, in place.

    With ``c = cos(angle) / r``, ``s = sin(angle) / r`` (``r = |(x, y)|``),
    ``y c - x s = sin(atan2(y, x) - angle)``; adding it leaves an error of
    order ``e^3 / 6`` from an error ``e``. OpenCV's vectorized
    ``cartToPolar``/``phase`` are within about 2e-4 radian; ``polarToCart``
    evaluates ``cos``/``sin`` to about 2e-7, so one step brings the angle to
    float32 rounding (measured: 5e-4 px on a 1394-pixel-wide panorama).

    Parameters
    ----------
    angle : ndarray, float32
        The approximate angle; refined in place and returned.
    x, y : ndarray, float32
        The arguments of ``atan2(y, x)``.
    inv_r : ndarray, float32
        ``1 / sqrt(x^2 + y^2)`` (any finite value where ``x = y = 0``).
    scratch : (ndarray, ndarray)
        Two float32 buffers of the same shape.

    Returns
    -------
    ndarray
        ``angle``.
    """
    c, s = scratch
    cv2.polarToCart(inv_r, angle, x=c, y=s)
    np.multiply(y, c, out=c)
    np.multiply(x, s, out=s)
    c -= s
    angle += c
    return angle


class MapBuilder:
    """Builds ``cv2.remap`` maps from a camera to a padded equirect image.

    The world direction of pixel ``(x, y)`` is ``d = R (u(x), v(y), 1)``, the
    camera ray of :func:`camera_rays` before normalization (``atan2`` needs no
    unit vector, and ``|d| = |(u, v, 1)|`` is fixed per pixel). A frame costs
    three ``cv2.addWeighted`` passes (``d_k = R[k, 0] U + R[k, 1] V + R[k, 2]``
    over fixed grids ``U``, ``V``), OpenCV's vectorized ``atan2``
    (``cv2.cartToPolar``, ``cv2.phase``), one :func:`refine_angle` step per
    angle, and two scale-and-shift passes, with no allocation:

    ``map_x = (W / 2 pi) atan2(-d_x, -d_z) + pad - 0.5``   (the angle in [0, 2 pi))
    ``map_y = (H / pi) atan2(sqrt(d_x^2 + d_z^2), d_y) + pad - 0.5``

    ``atan2(-d_x, -d_z)`` is the longitude ``atan2(d_x, d_z)`` plus pi, taken
    in [0, 2 pi), and the second angle is the colatitude ``pi / 2 - phi``: these
    are the maps of :func:`equirect_pixel_affine`. Coordinates stay within
    ``[pad - 0.5, W - 0.5 + pad]`` x ``[pad - 0.5, H - 0.5 + pad]`` (up to the
    refinement's few 1e-4 px past an end, still inside the padding), inside an
    image padded by :func:`pad_equirect`. Fixed-point maps (``cv2.convertMaps``)
    are not used: OpenCV's remap of 4 float channels is several times slower
    with them (docs/benchmarks.md).

    Not thread-safe: the returned maps are views of its buffers, overwritten by
    the next call.
    """

    def __init__(self, size: tuple[int, int], fov_deg: float, pano_hw: tuple[int, int], pad: int = PAD):
        self.size = tuple(size)
        h, w = self.size
        f = focal_length(w, float(fov_deg))
        u = (np.arange(w, dtype=np.float64) + 0.5 - w / 2.0) / f
        v = -(np.arange(h, dtype=np.float64) + 0.5 - h / 2.0) / f
        uu, vv = np.meshgrid(u, v)
        self._u = uu.astype(np.float32)
        self._v = vv.astype(np.float32)
        self._inv_norm = (1.0 / np.sqrt(uu * uu + vv * vv + 1.0)).astype(np.float32)  # 1 / |d|
        self.pano_hw = tuple(pano_hw)
        self._buf = np.empty((8, h, w), dtype=np.float32)
        sx, ox, sy, oy = equirect_pixel_affine(self.pano_hw, pad)
        # sx (lon + pi) + ox - sx pi: the angle in [0, 2 pi) is lon + pi
        self._sx, self._ox = np.float32(sx), np.float32(ox - sx * np.pi)
        self._sy, self._oy = np.float32(sy), np.float32(oy)

    def __call__(self, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps ``(map_x, map_y)``, float32 ``[H, W]`` each, for a world <- camera matrix."""
        rot = np.asarray(rotation, dtype=np.float64)
        neg_z, neg_x, d_y, rho, map_x, map_y, c, s = self._buf
        for out, row, sign in ((neg_z, 2, -1.0), (neg_x, 0, -1.0), (d_y, 1, 1.0)):
            cv2.addWeighted(self._u, sign * rot[row, 0], self._v, sign * rot[row, 1], sign * rot[row, 2], dst=out)
        cv2.cartToPolar(neg_z, neg_x, magnitude=rho, angle=map_x)  # atan2(-d_x, -d_z) in [0, 2 pi)
        cv2.phase(d_y, rho, angle=map_y)  # atan2(rho, d_y): the colatitude, in [0, pi]
        refine_angle(map_y, d_y, rho, self._inv_norm, (c, s))
        # rho = 0 only looking straight at a pole, where the longitude does not
        # matter: keep 1 / rho finite there (the correction stays within 1).
        np.maximum(rho, np.float32(1e-30), out=rho)
        np.reciprocal(rho, out=rho)
        refine_angle(map_x, neg_z, neg_x, rho, (c, s))
        map_x *= self._sx
        map_x += self._ox
        map_y *= self._sy
        map_y += self._oy
        return map_x, map_y
