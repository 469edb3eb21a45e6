"""What a panorama dataset is made of: :class:`PanoramaConfig` (Argaw et al. 2021)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import blursynth.panorama.geometry as geometry
from blursynth.budget import MAX_FRAMES_PER_EXPOSURE
from blursynth.config import SourceConfig, resolved_config
from blursynth.errors import BlursynthError
from blursynth.response import parse_response
from blursynth.sources.panoramas import default_sources

KIND = "panorama"


@dataclass(frozen=True)
class PanoramaConfig(SourceConfig):
    """Everything that determines the content of a panorama dataset.

    Angles are in degrees; ``size`` is ``(W, H)``, as every size in blursynth (the
    frames' array shape is :attr:`shape`). ``frames_per_degree=None``
    derives the frame count from ``max_step`` (see :func:`frames_per_radian`).
    ``per_panorama`` is the number of consecutive samples drawn from each
    panorama used (see :func:`blursynth.panorama.plan.plan`).
    """

    src: tuple[str, ...] = field(default_factory=default_sources)
    n: int = 100
    size: tuple[int, int] = (256, 256)
    fov: float = 60.0
    max_pitch: float = 30.0
    max_rotation: float = 10.0
    max_step: float = 1.0
    frames_per_degree: float | None = None
    latent: int = 3
    seq_len: int = 1
    duty: float = 1.0
    response: str = "srgb"
    gamma: float = 2.2
    device: str = "cpu"
    seed: int = 0
    per_panorama: int = 1
    noise_shot: tuple[float, ...] | None = None
    noise_read: tuple[float, ...] | None = None
    saturation: tuple[float, ...] | None = None
    jpeg: tuple[int, ...] | None = None

    def __post_init__(self):
        self.realism  # validates --noise-shot/--noise-read/--saturation/--jpeg

        def bad(option, value, why):
            raise BlursynthError(f"--{option} {value}: {why}")

        if not self.src:
            raise BlursynthError("--src: give at least one panorama or folder")
        if self.n < 1:
            bad("n", self.n, "must be at least 1")
        if len(self.size) != 2 or min(self.size) < 1:
            bad("size", "x".join(map(str, self.size)), "must be two positive integers WxH")
        if not 0 < self.fov < 180:
            bad("fov", self.fov, "the horizontal field of view must be between 0 and 180 degrees (exclusive)")
        if not 0 <= self.max_pitch <= 90:
            bad("max-pitch", self.max_pitch, "must be between 0 and 90 degrees")
        if not 0 < self.max_rotation <= 180:
            bad("max-rotation", self.max_rotation, "must be greater than 0 and at most 180 degrees")
        if not self.max_step > 0 or not math.isfinite(self.max_step):
            bad("max-step", self.max_step, "must be a positive number of pixels")
        if self.frames_per_degree is not None and not (0 < self.frames_per_degree < math.inf):
            bad("frames-per-degree", self.frames_per_degree, "must be positive")
        if self.latent < 0:
            bad("latent", self.latent, "must be 0 (none) or more")
        if self.seq_len < 1:
            bad("seq-len", self.seq_len, "must be at least 1")
        if not 0 < self.duty <= 1:
            bad("duty", self.duty, "the exposed fraction of a frame interval must be in (0, 1]")
        if self.per_panorama < 1:
            bad("per-panorama", self.per_panorama, "must be at least 1")
        if self.seed < 0:
            bad("seed", self.seed, "must be 0 or more")
        focal = geometry.focal_length(self.size[0], self.fov)
        if focal < 1:
            bad("fov", self.fov, f"at a width of {self.size[0]} pixels the focal length is {focal:.3g} pixels; "
                                 "it must be at least 1 (lower --fov or raise --size)")
        angle = self.duty * min(math.pi, 3 * math.radians(self.max_rotation))  # largest turn in one exposure
        frames = 1 + self.frames_per_radian * angle
        if not frames <= MAX_FRAMES_PER_EXPOSURE:
            option = ("frames-per-degree", self.frames_per_degree) if self.frames_per_degree is not None \
                else ("max-step", self.max_step)
            many = f"{frames:.3g}" if math.isfinite(frames) else "more than 1e308"
            bad(*option, f"up to {many} frames would be averaged into one blurred frame; at most "
                         f"{MAX_FRAMES_PER_EXPOSURE:,} are allowed")
        if self.device not in ("cpu", "cuda"):
            bad("device", self.device, "expected cpu or cuda")
        parse_response(self.response, self.gamma)  # validates --response/--gamma

    @property
    def frames_per_radian(self) -> float:
        """``k`` of ``n = 1 + max(1, ceil(k theta))`` frames for a turn of ``theta`` radians.

        ``--frames-per-degree`` gives it directly; otherwise ``k = M / max_step``
        with ``M`` the largest image speed of any rotation
        (:func:`blursynth.panorama.geometry.max_flow_per_radian`), so that no pixel moves
        more than ``--max-step`` pixels between consecutive frames.
        """
        if self.frames_per_degree is not None:
            return self.frames_per_degree * 180.0 / math.pi
        return geometry.max_flow_per_radian(self.shape, self.fov) / self.max_step

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``: the frames' array shape (rows, columns), as the geometry takes it."""
        return self.size[1], self.size[0]

    def to_dict(self) -> dict:
        """The config as recorded in manifest.json; ``size`` is recorded ``[H, W]``, as it always
        was, so that existing datasets keep their identity (resume, fingerprints)."""
        recorded = resolved_config(self)
        recorded["size"] = list(self.shape)
        return recorded
