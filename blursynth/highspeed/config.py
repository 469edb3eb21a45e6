"""What a high-speed dataset is made of: :class:`HighspeedConfig` (Kim et al. 2017),
the per-clip choices that follow from it (output size, frame rate)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from blursynth.config import SourceConfig
from blursynth.errors import BlursynthError
from blursynth.response import parse_responses
from blursynth.sources.clips import Clip

KIND = "highspeed"
# Frames decoded ahead by a worker's spare thread (held besides one exposure window).
READAHEAD = 3
# Largest --interpolate factor (REDS used 16).
MAX_INTERPOLATE = 64
# Frame rate assumed for frame folders without --fps (GoPro and Kim et al. 2017 used 240 fps).
DEFAULT_FPS = 240.0
# Below this, averaging frames ghosts instead of blurring (see docs/highspeed.md).
LOW_FPS = 120.0


@dataclass(frozen=True)
class HighspeedConfig(SourceConfig):
    """Everything that determines the content of a high-speed dataset.

    ``T`` is ``"auto"`` (uniform in tau..2tau-1, Kim et al. 2017), ``"tau"``
    (T = tau: no gap, as GoPro) or a tuple of periods drawn uniformly.
    ``fps=None`` records each video's own frame rate (frame folders: 240).
    ``resize`` is ``(W, H)``, or ``(W, None)`` / ``(None, H)`` to keep each
    clip's aspect ratio (:func:`output_size`).
    """

    src: tuple[str, ...]
    tau: tuple[int, ...] = (7,)
    T: str | tuple[int, ...] = "auto"
    fps: float | None = None
    repeats: int = 1
    seq_len: int = 1
    latent: int = 0
    response: str = "gamma"
    gamma: float = 2.2
    resize: tuple[int | None, int | None] | None = None
    seed: int = 0
    noise_shot: tuple[float, ...] | None = None
    noise_read: tuple[float, ...] | None = None
    saturation: tuple[float, ...] | None = None
    jpeg: tuple[int, ...] | None = None
    interpolate: int = 1
    motion: bool = False

    def __post_init__(self):
        self.realism  # validates --noise-shot/--noise-read/--saturation/--jpeg
        if not 1 <= self.interpolate <= MAX_INTERPOLATE:
            raise BlursynthError(f"--interpolate {self.interpolate}: must be between 1 (off) and {MAX_INTERPOLATE}")
        if not self.tau:
            raise BlursynthError("--tau: give at least one value")
        for tau in self.tau:
            if tau < 1:
                raise BlursynthError(f"--tau {tau}: must be at least 1")
            if tau % 2 == 0:
                raise BlursynthError(
                    f"--tau {tau}: even tau has no mid-exposure frame for the sharp target; use an odd tau")
        if isinstance(self.T, tuple):
            if min(self.T) < max(self.tau):
                raise BlursynthError(
                    f"--T {min(self.T)}: shorter than --tau {max(self.tau)}; the period T must be >= tau")
        elif self.T not in ("auto", "tau"):
            raise BlursynthError(f"--T {self.T}: expected auto, tau, or a list of integers")
        if self.latent:
            if self.latent < 2:
                raise BlursynthError(f"--latent {self.latent}: needs at least 2 (first and last frame) or 0")
            for tau in self.tau:
                if (tau - 1) % (self.latent - 1):
                    raise BlursynthError(
                        f"--latent {self.latent}: K-1 = {self.latent - 1} must divide tau-1 = {tau - 1} "
                        f"(for --tau {tau}) so that latent frames fall on source frames")
        if self.seq_len < 1:
            raise BlursynthError(f"--seq-len {self.seq_len}: must be at least 1")
        if self.repeats < 1:
            raise BlursynthError(f"--repeats {self.repeats}: must be at least 1")
        if self.seed < 0:
            raise BlursynthError(f"--seed {self.seed}: must be 0 or more")
        if self.fps is not None and not 0 < self.fps < math.inf:
            raise BlursynthError(f"--fps {self.fps}: must be a positive number")
        if self.resize is not None:
            if len(self.resize) != 2 or self.resize == (None, None) or \
                    any(v is not None and v < 1 for v in self.resize):
                shown = "x".join("" if v is None else str(v) for v in self.resize)
                raise BlursynthError(f"--resize {shown}: expected WxH, Wx or xH with positive sizes")
        parse_responses(self.response, self.gamma)  # validates --response (a list too) and --gamma


def output_size(resize: tuple[int | None, int | None] | None, size: tuple[int, int]) -> tuple[int, int] | None:
    """(W, H) a clip of ``size`` is resized to, or None to keep it.

    ``(W, None)`` and ``(None, H)`` keep the clip's aspect ratio (the other side
    rounded to the nearest pixel); a size equal to the clip's is no resize.
    """
    if resize is None:
        return None
    w, h = resize
    if h is None:
        h = max(1, round(size[1] * w / size[0]))
    elif w is None:
        w = max(1, round(size[0] * h / size[1]))
    return None if (w, h) == tuple(size) else (w, h)


def clip_fps(config: HighspeedConfig, clip: Clip) -> float:
    """The frame rate recorded for ``clip``: ``--fps``, else the video's own, else 240."""
    return float(config.fps or clip.fps or DEFAULT_FPS)

