"""Plan: config + probed clips -> one frozen :class:`HighspeedSpec` per sample (pure).

Each clip's ``(tau, T)`` draw comes from a stream keyed by the clip id
(:func:`draw_exposure`), and each sample's seed from its index, so a spec does not
depend on the other clips, on the number of workers, or on the order of rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from blursynth.errors import BadSourceError
from blursynth.highspeed.config import READAHEAD, HighspeedConfig, clip_fps, output_size
from blursynth.realism import Realism
from blursynth.run.seeds import sample_seed, source_rng
from blursynth.sources.clips import Clip


@dataclass(frozen=True)
class HighspeedSpec:
    """One sample: L consecutive exposures of one clip under one (tau, T) draw."""

    index: int
    seed: int
    source: str
    path: str
    stored_as: str  # the clip's: "frames" | "video"
    files: tuple[str, ...]  # frame files start..start+span-1 (frame folders only)
    size: tuple[int, int]
    start: int
    tau: int
    T: int
    seq_len: int
    latent: int
    response: str
    resize: tuple[int, int] | None
    fps: float
    repeat: int
    ahead: int = 0  # first frames of the same clip's next sample, decoded ahead (no effect on content)
    realism: Realism = Realism()
    interpolate: int = 1  # --interpolate N: N - 1 frames between consecutive source frames (blur only)
    motion: bool = False  # measure the optical flow (meta motion_mean / motion_max)
    renditions: tuple[str, ...] = ()  # further curves of a --response list (arrays blur_<kind>)
    stamps: tuple = ()  # size and mtime of each file read, at planning (blursynth.sources.stamps)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(W, H) of the written frames; a shard holds one (see :func:`plan`)."""
        return self.resize or self.size

    @property
    def span(self) -> int:
        """Source frames the sample covers: ``(L - 1) T + tau``."""
        return (self.seq_len - 1) * self.T + self.tau

    @property
    def ahead_indices(self) -> list[int]:
        """Indices of the frames of the clip's next sample that are decoded ahead."""
        following = self.start + self.seq_len * self.T
        return list(range(following, following + self.ahead))


def draw_exposure(config: HighspeedConfig, clip_id: str, repeat: int) -> tuple[int, int]:
    """``(tau, T)`` of one clip and repeat, from a stream keyed by the clip id.

    Parameters
    ----------
    config : HighspeedConfig
    clip_id : str
        The clip's id; the draw does not depend on the other clips.
    repeat : int
        Which pass over the clip (``--repeats``).

    Returns
    -------
    tau, T : int
    """
    rng = source_rng(config.seed, clip_id, repeat)
    tau = int(rng.choice(config.tau))
    if config.T == "auto":
        T = int(rng.integers(tau, 2 * tau))  # tau <= T <= 2 tau - 1
    elif config.T == "tau":
        T = tau
    else:
        T = int(rng.choice(config.T))
    return tau, T


def plan(config: HighspeedConfig, clips: list[Clip], skip_bad: bool = False):
    """Pure: config + probed clips -> ``(specs, skipped)``, specs in index order.

    Samples are grouped by the size of their frames, in the order in which each
    size first occurs among the (sorted) clips, so that the engine can give each
    shard one frame size; with one size this is the plain clip order.

    Parameters
    ----------
    config : HighspeedConfig
    clips : list of Clip
        The probed clips (:func:`blursynth.sources.clips.discover`).
    skip_bad : bool
        List clips too short for one sample instead of raising.

    Returns
    -------
    specs : list of HighspeedSpec
    skipped : list of dict
        ``{"source": id, "reason": ...}`` per clip too short.

    Raises
    ------
    BadSourceError
        A clip too short for one sample, without ``skip_bad``.
    """
    specs, skipped = [], []
    shortest = min(config.tau)
    responses = [r.name for r in config.responses]  # parsed once (a crf:FILE curve reads its file)

    def unusable(clip: Clip, reason: str) -> None:
        """Refuse the clip, or with --skip-bad record it as skipped."""
        if not skip_bad:
            raise BadSourceError(clip.id, f"{reason}; use a longer clip, a smaller --tau, --T or --seq-len, "
                                          "or --skip-bad to leave it out")
        skipped.append({"source": clip.id, "reason": reason})

    for clip in clips:
        if most_samples(config, clip) == 0:  # no draw fits: say so once, not once per repeat
            least = (config.seq_len - 1) * _periods(config)[0] + shortest
            unusable(clip, f"too short: {clip.n_frames} frames give no sample of {config.seq_len} exposure(s) "
                           f"(--seq-len) even with tau={shortest}, which needs {least} frames")
            continue
        resize = output_size(config.resize, clip.size)
        fps = clip_fps(config, clip)
        for repeat in range(config.repeats):
            tau, T = draw_exposure(config, clip.id, repeat)
            exposures = (clip.n_frames - tau) // T + 1 if clip.n_frames >= tau else 0
            n_samples = exposures // config.seq_len
            if n_samples == 0:
                unusable(clip, f"too short: {clip.n_frames} frames give {exposures} exposures of tau={tau}, "
                               f"T={T}; a sample needs {config.seq_len} (--seq-len), "
                               f"{(config.seq_len - 1) * T + tau} frames")
                continue
            span = (config.seq_len - 1) * T + tau
            for s in range(n_samples):
                start = s * config.seq_len * T
                ahead = min(READAHEAD, tau) if s + 1 < n_samples else 0
                end = start + config.seq_len * T + ahead if ahead else start + span
                index = len(specs)
                specs.append(HighspeedSpec(
                    index=index, seed=0, source=clip.id, path=clip.path,
                    stored_as=clip.stored_as, files=clip.files[start:end] if clip.files else (),
                    # the frames of its content only: frames decoded ahead are the next spec's
                    stamps=clip.stamps[start:start + span] if clip.files else clip.stamps,
                    size=clip.size, start=start, tau=tau, T=T, seq_len=config.seq_len,
                    latent=config.latent, response=responses[0], renditions=tuple(responses[1:]), resize=resize,
                    fps=fps, repeat=repeat, ahead=ahead, realism=config.realism,
                    interpolate=config.interpolate, motion=config.motion or config.interpolate > 1))
    order = {}
    for spec in specs:
        order.setdefault(spec.frame_size, len(order))
    specs.sort(key=lambda spec: order[spec.frame_size])  # stable: clip order within a size
    specs = [replace(spec, index=i, seed=sample_seed(config.seed, i)) for i, spec in enumerate(specs)]
    return specs, skipped


def _periods(config: HighspeedConfig) -> tuple[int, int]:
    """The shortest and longest period T any draw can give."""
    if config.T == "auto":
        return min(config.tau), 2 * max(config.tau) - 1
    if config.T == "tau":
        return min(config.tau), max(config.tau)
    return min(config.T), max(config.T)


def frames_needed(config: HighspeedConfig) -> int:
    """Frames a clip needs so that every (tau, T) draw of ``config`` gives it a sample:
    ``(L - 1) T_max + tau_max`` (``blursynth sample`` makes clips this long)."""
    return (config.seq_len - 1) * _periods(config)[1] + max(config.tau)


def most_samples(config: HighspeedConfig, clip: Clip) -> int:
    """Samples of one draw of ``clip`` with the shortest tau and T (an upper bound)."""
    tau, T = min(config.tau), _periods(config)[0]
    return ((clip.n_frames - tau) // T + 1) // config.seq_len if clip.n_frames >= tau else 0


def least_samples(config: HighspeedConfig, clip: Clip) -> int:
    """Samples of one draw of ``clip`` with the longest tau and T (a lower bound)."""
    tau, T = max(config.tau), _periods(config)[1]
    return ((clip.n_frames - tau) // T + 1) // config.seq_len if clip.n_frames >= tau else 0
