"""Plan (pure): config + checked panoramas -> one frozen :class:`PanoramaSpec` per sample.

Every random draw of sample ``i`` comes from its own stream
``sample_rng(seed, i)`` (:mod:`blursynth.run.seeds`), so a spec does not depend on
the other samples, on the number of workers, or on the order of rendering.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import quaternion

import blursynth.panorama.geometry as geometry
from blursynth.panorama.config import PanoramaConfig
from blursynth.realism import Realism
from blursynth.run.seeds import sample_sequence, sequence_seed
from blursynth.sources.panoramas import Panorama


def working_width(width: int, size: tuple[int, int], fov: float) -> int:
    """Width a panorama is resampled to before rendering.

    A panorama finer than the camera (more than ``2 pi f`` pixels around, ``f``
    the focal length) is first area-averaged, in linear light, to ``2 ceil(pi f)``
    pixels: bilinear sampling of a much finer image would alias. Coarser ones
    are used as they are.

    Parameters
    ----------
    width : int
        The panorama's width in pixels.
    size : (int, int)
        ``(W, H)`` of the camera.
    fov : float
        Horizontal field of view in degrees.

    Returns
    -------
    int
    """
    target = 2 * math.ceil(math.pi * geometry.focal_length(size[0], fov))
    # never below 4 x 2: the padded panorama needs a row beyond each pole row
    return min(width, max(target, 4))


@dataclass(frozen=True)
class PanoramaSpec:
    """One sample: a camera path over one panorama and how to render it.

    Quaternions are ``(w, x, y, z)``; ``omega0``/``omega1`` are rotation
    vectors in radians per frame interval, in the camera frame of ``q_start``.
    """

    index: int
    seed: int
    source: str
    path: str
    dynamic_range: str  # the panorama's: "ldr" | "hdr"
    pano_width: int
    shape: tuple[int, int]  # (H, W) of the frames: the config's size (W, H) as array rows, columns
    fov: float
    yaw_deg: float
    pitch_deg: float
    q_start: tuple[float, float, float, float]
    omega0: tuple[float, float, float]
    omega1: tuple[float, float, float]
    seq_len: int
    duty: float
    n_frames: tuple[int, ...]  # frames averaged into each of the seq_len blurred frames
    latent: int
    response: str
    device: str
    realism: Realism = Realism()
    stamps: tuple = ()  # size and mtime of the panorama file at planning (blursynth.sources.stamps)

    @property
    def span(self) -> float:
        """Time over which ``dr/dt`` goes from ``omega0`` to ``omega1``."""
        return float(self.seq_len)

    def orientation(self, t):
        """Camera orientation at time ``t`` (frame intervals; an array gives an array)."""
        return geometry.path_orientation(geometry.from_wxyz(self.q_start), self.omega0, self.omega1,
                                         self.span, t)

    def rotations(self, j: int, offsets) -> np.ndarray:
        """World <- camera matrices at fractions ``offsets`` of exposure ``j``.

        Parameters
        ----------
        j : int
            The exposure (frame) of the sequence, 0-based.
        offsets : sequence of Fraction or float
            Times within the exposure, 0 (start) to 1 (end of the exposed ``duty``).

        Returns
        -------
        ndarray
            float32 ``[n, 3, 3]``.
        """
        times = j + self.duty * np.array([float(o) for o in offsets], dtype=np.float64)
        return geometry.rotation_matrix(self.orientation(times))


def frames_per_radian(config: PanoramaConfig) -> float:
    """``k`` of ``n = 1 + max(1, ceil(k theta))`` (see :attr:`PanoramaConfig.frames_per_radian`)."""
    return config.frames_per_radian


def n_frames_for(angle: float, k: float) -> int:
    """Frames that sample a rotation of ``angle`` radians with ``k`` frames per radian.

    ``n - 1`` gaps of at most ``1 / k`` radians each: ``n = 1 + max(1, ceil(k angle))``.

    Parameters
    ----------
    angle : float
        Largest rotation within the exposure, radians.
    k : float
        Frames per radian (:func:`frames_per_radian`).

    Returns
    -------
    int
        At least 2 (the two ends of the exposure).
    """
    steps = math.ceil(k * angle - 1e-9)
    return 1 + max(1, steps)


def _euler_rotvec(angles_deg) -> np.ndarray:
    dq = geometry.canonical(geometry.euler_to_quat(*np.radians(angles_deg)))
    return quaternion.as_rotation_vector(dq)


def plan_sample(config: PanoramaConfig, index: int, pano: Panorama, k: float) -> PanoramaSpec:
    """The spec of sample ``index``: every random draw comes from ``sample_rng(seed, index)``.

    Draw order: yaw in [-180, 180), pitch in [-max_pitch, max_pitch], three
    Euler angles of ``omega0`` then three of ``omega1``, each uniform in
    [-max_rotation, max_rotation] (``omega1`` is drawn always and used only
    when ``seq_len > 1``).

    Parameters
    ----------
    config : PanoramaConfig
    index : int
        The sample's index in the dataset.
    pano : Panorama
        The panorama it looks at.
    k : float
        Frames per radian (:func:`frames_per_radian`).

    Returns
    -------
    PanoramaSpec
    """
    sequence = sample_sequence(config.seed, index)  # built once: planning 1e5 samples adds up
    rng = np.random.default_rng(sequence)
    yaw = float(rng.uniform(-180.0, 180.0))
    pitch = float(rng.uniform(-config.max_pitch, config.max_pitch))
    euler0 = rng.uniform(-config.max_rotation, config.max_rotation, size=3)
    euler1 = rng.uniform(-config.max_rotation, config.max_rotation, size=3)
    omega0 = _euler_rotvec(euler0)
    omega1 = _euler_rotvec(euler1) if config.seq_len > 1 else omega0
    q_start = geometry.euler_to_quat(math.radians(yaw), math.radians(pitch), 0.0)
    span, duty = float(config.seq_len), config.duty
    n_frames = tuple(
        n_frames_for(duty * geometry.path_max_speed(omega0, omega1, span, j, j + duty), k)
        for j in range(config.seq_len))
    return PanoramaSpec(
        index=index, seed=sequence_seed(sequence), source=pano.id, path=pano.path,
        dynamic_range=pano.dynamic_range,
        pano_width=working_width(pano.size[0], config.size, config.fov), shape=config.shape,
        fov=float(config.fov), yaw_deg=yaw, pitch_deg=pitch,
        q_start=tuple(float(v) for v in geometry.as_wxyz(q_start)),
        omega0=tuple(float(v) for v in omega0), omega1=tuple(float(v) for v in omega1),
        seq_len=config.seq_len, duty=float(duty), n_frames=n_frames, latent=config.latent,
        response=config.response_name, device=config.device, realism=config.realism, stamps=pano.stamps)


def plan(config: PanoramaConfig, panoramas: list[Panorama]) -> list[PanoramaSpec]:
    """Pure: config + checked panoramas -> specs in index order.

    Samples come in groups of ``K = per_panorama`` consecutive ones (the last
    group may be shorter); of ``G = ceil(N / K)`` groups, group ``g`` uses
    panorama ``floor(g S / G)`` of the ``S`` usable ones (sorted by id). With
    ``K = 1`` sample ``i`` uses panorama ``floor(i S / N)``. Consecutive samples
    share a panorama, so a worker decodes it once for ``K`` (or more) renders.

    Parameters
    ----------
    config : PanoramaConfig
    panoramas : list of Panorama
        The checked sources, at least one
        (:func:`blursynth.panorama.pipeline.discover`).

    Returns
    -------
    list of PanoramaSpec
    """
    k = frames_per_radian(config)
    s, per = len(panoramas), config.per_panorama
    groups = -(-config.n // per)
    return [plan_sample(config, i, panoramas[(i // per) * s // groups], k) for i in range(config.n)]
