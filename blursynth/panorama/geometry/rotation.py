"""Orientations: quaternions, Euler angles and the camera path of a sample (conventions
in :mod:`blursynth.panorama.geometry`)."""

from __future__ import annotations

import math

import numpy as np
import quaternion  # numpy-quaternion: registers np.quaternion

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


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

