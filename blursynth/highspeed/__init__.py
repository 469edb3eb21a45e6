"""High-speed video -> blurred/sharp pairs (Kim et al. 2017, Eq. 1).

For a clip X_0, X_1, ... and a draw (tau, T), exposure n averages tau
consecutive frames in linear light and skips the rest of its period T::

    B_n = g( (1/tau) * sum_{j=0}^{tau-1} g^{-1}(X_{nT+j}) ),      tau <= T <= 2 tau - 1

where g is the camera response (``--response``). A list of curves
(``--response gamma,linear``) renders each exposure once per curve from the
same decoded frames: ``blur`` with the first, ``blur_<kind>`` with each further
one, every rendition with its own g (see :func:`render`). The sharp target is the
mid-exposure frame S_n = X_{nT + (tau-1)/2}. The paper writes the mid index as
ceil(tau/2) with 1-based j; with 0-based j that is one frame late, so we use
(tau-1)/2 and therefore need odd tau (even tau has no middle frame).

``--latent K`` keeps K frames spread evenly over the exposure, first and last
included: X_{nT + k(tau-1)/(K-1)}, k = 0..K-1.

A sample is ``--seq-len L`` consecutive exposures. Clips are tiled from frame 0:
sample s of a draw covers exposures n = sL .. sL+L-1; exposures that do not fill
a whole sample at the end of a clip are dropped. See docs/highspeed.md.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

import blursynth.budget as budget
import blursynth.highspeed.interpolate as interpolate
from blursynth.config import SourceConfig
from blursynth.run.engine import RunOptions, default_out, run
from blursynth.errors import BadSourceError, BlursynthError, note
from blursynth.realism import Realism, changes_linear, clip_mask, compress, degrade_linear
from blursynth.response import Response, parse_response, parse_responses
from blursynth.run.seeds import sample_seed, source_rng
from blursynth.dataset import Manifest, Sample, rendition_array
from blursynth.sources.clips import Clip, VideoReader, decode_frame, discover, sample_fallback
from blursynth.run.worker import Worker

KIND = "highspeed"
# Frames decoded ahead by a worker's spare thread (held besides one exposure window).
READAHEAD = 3
# Largest --interpolate factor (REDS used 16).
MAX_INTERPOLATE = 64


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



@dataclass(frozen=True)
class HighspeedSpec:
    """One sample: L consecutive exposures of one clip under one (tau, T) draw."""

    index: int
    seed: int
    source: str
    path: str
    clip_kind: str
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


# Frame rate assumed for frame folders without --fps (GoPro and Kim et al. 2017 used 240 fps).
DEFAULT_FPS = 240.0
# Below this, averaging frames ghosts instead of blurring (see docs/highspeed.md).
LOW_FPS = 120.0


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
        if _most_samples(config, clip) == 0:  # no draw fits: say so once, not once per repeat
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
                    clip_kind=clip.kind, files=clip.files[start:end] if clip.files else (),
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


def _most_samples(config: HighspeedConfig, clip: Clip) -> int:
    """Samples of one draw of ``clip`` with the shortest tau and T (an upper bound)."""
    tau, T = min(config.tau), _periods(config)[0]
    return ((clip.n_frames - tau) // T + 1) // config.seq_len if clip.n_frames >= tau else 0


def _least_samples(config: HighspeedConfig, clip: Clip) -> int:
    """Samples of one draw of ``clip`` with the longest tau and T (a lower bound)."""
    tau, T = max(config.tau), _periods(config)[1]
    return ((clip.n_frames - tau) // T + 1) // config.seq_len if clip.n_frames >= tau else 0


def check_budget(config: HighspeedConfig, clips: list[Clip], out) -> str:
    """Refuse at once, with the estimate, what cannot work (before planning).

    In time linear in the number of clips: one sample larger than this
    machine's memory, a plan of more than
    :data:`blursynth.budget.MAX_PLANNED_SAMPLES` samples, or a dataset larger
    than the free space of ``out`` (its smallest possible size). Returns that
    size and the free space as one line (said before the first sample).

    Raises
    ------
    BlursynthError
        Naming the options and the estimate.
    """
    L, K, R = config.seq_len, config.latent, len(config.responses)
    memory, most, least, disk = 0, 0, 0, 0
    for clip in clips:
        w, h = output_size(config.resize, clip.size) or clip.size
        sw, sh = clip.size
        # the uint8 sample, tau + read-ahead decoded frames, float32 averaging buffers
        memory = max(memory, budget.frame_bytes(L, K, h, w, R) + (max(config.tau) + READAHEAD) * sw * sh * 3
                     + 3 * sw * sh * 3 * 4)
        most += _most_samples(config, clip)
        least += _least_samples(config, clip)
        disk += _least_samples(config, clip) * (budget.frame_bytes(L, K, h, w, R) + budget.SAMPLE_OVERHEAD)
    size = ("--resize " + "x".join("" if v is None else str(v) for v in config.resize) if config.resize
            else "source-size frames")
    budget.check_sample_memory(memory, f"--seq-len {L}, --latent {K}, {size}")
    budget.check_plan_size(most * config.repeats, f"--repeats {config.repeats} over {len(clips)} clip(s)")
    fewest = budget.count(least * config.repeats, "sample")
    return budget.check_disk(out, disk * config.repeats, f"at least {fewest}")


# ------------------------------------------------------------------ render
class Decoder:
    """A worker's background decoding thread and the decodes it carries from
    one sample to the next (kept in the :class:`~blursynth.run.worker.Worker`)."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blursynth-decode")
        self.carried: dict = {}

    def close(self):
        """Stop the decoding thread and drop the decodes carried."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.carried = {}


def _video_reader(worker: Worker, path: str, clip_id: str) -> VideoReader:
    # One open video per worker: consecutive specs of a clip continue reading
    # where the last one stopped instead of re-decoding from the start.
    reader = worker.state("highspeed.video", lambda: VideoReader(path, clip_id))
    if (reader.path, reader.clip_id) != (path, clip_id):
        worker.drop("highspeed.video")
        reader = worker.state("highspeed.video", lambda: VideoReader(path, clip_id))
    return reader


class FrameStream:
    """Frames of a spec's clip (absolute indices), decoded once each, in order.

    Parameters
    ----------
    spec : HighspeedSpec
        The sample whose clip is read.
    worker : Worker
        How many threads may decode, and where the open video and the decodes
        ahead are kept between samples.
    """

    def __init__(self, spec: HighspeedSpec, worker: Worker):
        self.spec, self.worker = spec, worker
        self.video = _video_reader(worker, spec.path, spec.source) if spec.clip_kind == "video" else None

    def stream(self, indices: list[int]):
        """Yield the frames at ``indices`` in order.

        When the worker has a spare CPU thread (``worker.threads`` > 1), a
        background thread decodes up to ``READAHEAD`` frames ahead while the
        caller averages and writes, so decoding never waits for end-of-exposure
        work. It reads on into the first frames of the clip's next sample
        (``spec.ahead``); those decodes are kept in the worker for its next
        ``render`` call. Reads stay sequential (one thread), as videos need.
        """
        if self.worker.threads < 2:
            for k in indices:
                yield self.read(k)
            return
        decoder = self.worker.state("highspeed.decoder", Decoder)
        carried, decoder.carried = decoder.carried, {}
        wanted = iter(indices + self.spec.ahead_indices)
        pending = deque()

        def request():
            k = next(wanted, None)
            if k is not None:
                future = carried.pop((self.spec.path, k), None) or decoder.pool.submit(self.read, k)
                pending.append((k, future))

        for _ in range(READAHEAD):
            request()
        for i in range(len(indices)):
            _, future = pending.popleft()
            request()
            if i == len(indices) - 1:  # what is still in flight belongs to the next sample
                decoder.carried = {(self.spec.path, k): f for k, f in pending}
            yield future.result()

    def read(self, k: int) -> np.ndarray:
        """Decode frame ``k`` of the clip (BGR uint8), checking its size."""
        spec = self.spec
        if self.video is not None:
            frame = self.video.read(k)
            where = f"{spec.path} frame {k}"
        else:
            where = str(Path(spec.path) / spec.files[k - spec.start])
            frame = decode_frame(where, spec.source)
        if (frame.shape[1], frame.shape[0]) != spec.size:
            raise BadSourceError(spec.source, f"{where}: frame size {frame.shape[1]}x{frame.shape[0]} "
                                              f"differs from the clip's {spec.size[0]}x{spec.size[1]}")
        return frame


def latent_offsets(tau: int, k: int) -> list[int]:
    """Offsets ``j`` of the ``K`` latent frames within an exposure (first and last included).

    Parameters
    ----------
    tau : int
        Frames in the exposure.
    k : int
        Latent frames, ``K >= 2`` with ``K - 1`` dividing ``tau - 1``.

    Returns
    -------
    list of int
    """
    return [i * (tau - 1) // (k - 1) for i in range(k)]


def render(spec: HighspeedSpec, worker: Worker | None = None) -> Sample:
    """Render one sample (see the module docstring for the maths).

    With further renditions (``spec.renditions``, a ``--response`` list), each
    exposure window is decoded once and averaged once per curve, each curve
    with its own g and g^-1: a rendition is Eq. 1 under that curve, so its
    tones match the sharp frame as a single-curve run with that curve would
    (GoPro's ``blur`` is the plain mean of the 8-bit frames, not the
    gamma-linearized mean stored linearly). What does not depend on the curve
    is done once: decoding, the sharp and latent frames, optical flow, the
    clip mask and the realism draws (the same noise field for every curve).

    Parameters
    ----------
    spec : HighspeedSpec
        The sample; it alone decides the content.
    worker : Worker, optional
        Threads for decoding ahead and the state kept between samples (see
        :mod:`blursynth.run.worker`); None renders serially on its own.

    Returns
    -------
    Sample
        ``blur``/``sharp`` uint8 RGB ``[L, H, W, 3]``, ``blur_<kind>`` (shaped
        as ``blur``) per further rendition, ``latent`` ``[L, K, H, W, 3]``
        with ``--latent K``, and the meta fields of docs/format.md.
    """
    response = parse_response(spec.response)
    curves = {"blur": response, **{rendition_array(r.kind): r for r in map(parse_response, spec.renditions)}}
    frames = FrameStream(spec, worker or Worker())
    mid = (spec.tau - 1) // 2
    latent_at = {j: i for i, j in enumerate(latent_offsets(spec.tau, spec.latent))} if spec.latent else {}
    w, h = spec.resize or spec.size
    blurs = {name: np.empty((spec.seq_len, h, w, 3), np.uint8) for name in curves}
    sharp = np.empty_like(blurs["blur"])
    latent = np.empty((spec.seq_len, spec.latent, h, w, 3), np.uint8) if spec.latent else None
    linear = np.empty((spec.size[1], spec.size[0], 3), np.float32) if spec.resize else None

    def finish(image: np.ndarray, dst: np.ndarray) -> None:
        """BGR source-size uint8 image -> RGB output ``dst``, resized in linear light."""
        if spec.resize:
            lin = cv2.resize(response.linearize(image), spec.resize, interpolation=cv2.INTER_AREA)
            image = response.encode(lin)
        cv2.cvtColor(image, cv2.COLOR_BGR2RGB, dst=dst)

    # Realism (blursynth.realism): drawn from the sample's own named streams.
    params = spec.realism.draw(spec.seed)
    degrade = changes_linear(params)
    interp = spec.interpolate > 1 and spec.tau > 1
    measure = spec.motion or spec.interpolate > 1  # the flows are needed anyway
    mask = np.empty((spec.size[1], spec.size[0], 3), np.float32) if params.get("saturation") else None
    if (degrade or interp) and linear is None:
        linear = np.empty((spec.size[1], spec.size[0], 3), np.float32)
    moved_sum, moved_count, moved_max = 0, 0, 0.0

    def blurred(curve: Response, window: list, pair_flows: list, clipped, n: int) -> np.ndarray:
        """Exposure ``n`` of the window under ``curve``: BGR uint8 at the output size (Eq. 1)."""
        if degrade or interp:
            if interp:
                interpolate.interpolated_mean(window, spec.interpolate, curve, pair_flows, out=linear)
            else:
                curve.average(window, linear_out=linear)
            lin = cv2.resize(linear, spec.resize, interpolation=cv2.INTER_AREA) if spec.resize else linear
            return curve.encode(degrade_linear(lin, params, spec.seed, n, clipped) if degrade else lin)
        if spec.resize:
            # Resampling is linear, so resizing the linear mean equals averaging
            # the resized frames, at one resize per exposure instead of tau.
            curve.average(window, linear_out=linear)
            return curve.encode(cv2.resize(linear, spec.resize, interpolation=cv2.INTER_AREA))
        return curve.average(window)  # Eq. 1

    # Frames stream in exposure order; one exposure window (tau frames) is held.
    stream = frames.stream([spec.start + n * spec.T + j for n in range(spec.seq_len) for j in range(spec.tau)])
    for n in range(spec.seq_len):
        window = [next(stream) for _ in range(spec.tau)]
        finish(window[mid], sharp[n])
        for j, k in latent_at.items():
            finish(window[j], latent[n, k])
        pair_flows = []
        if measure:  # ghosting control: optical flow between consecutive source frames
            pair_flows = [interpolate.flows(a, b) for a, b in zip(window[:-1], window[1:])]
            for f01, _ in pair_flows:
                moved = interpolate.displacement(f01)
                moved_sum += interpolate.exact_sum(moved)
                moved_count += moved.size
                moved_max = max(moved_max, float(moved.max()))
        clipped = None
        if mask is not None and degrade:  # the clip mask averaged over the exposure (RSBlur)
            mask.fill(0.0)
            for frame in window:
                cv2.add(mask, clip_mask(frame), dst=mask)
            clipped = mask * np.float32(1.0 / len(window))
            if spec.resize:
                clipped = cv2.resize(clipped, spec.resize, interpolation=cv2.INTER_AREA)
        for name, curve in curves.items():
            cv2.cvtColor(blurred(curve, window, pair_flows, clipped, n), cv2.COLOR_BGR2RGB, dst=blurs[name][n])
            if "jpeg_quality" in params:
                blurs[name][n] = compress(blurs[name][n], params["jpeg_quality"])
        del window

    arrays = {**blurs, "sharp": sharp}
    if latent is not None:
        arrays["latent"] = latent
    meta = {"index": spec.index, "source": spec.source, "start": spec.start, "tau": spec.tau,
            "T": spec.T, "fps": float(spec.fps), "seed": spec.seed, "repeat": spec.repeat, **params}
    if measure:  # px per source frame (0 for tau = 1: no pair of frames)
        meta["motion_mean"] = moved_sum / interpolate.SUM_UNITS / moved_count if moved_count else 0.0
        meta["motion_max"] = moved_max
    return Sample(arrays, meta)


def _assumed_rate(config: HighspeedConfig, clips: list[Clip]) -> list[str]:
    """The line that says 240 fps is assumed for clips that carry no frame rate (frame
    folders), or none; said with the folder written to, as defaults are."""
    assumed = [c for c in clips if config.fps is None and c.fps is None]
    if not assumed:
        return []
    if len(assumed) == 1:
        who = f"{assumed[0].id} has"
    elif len(assumed) == len(clips):
        who = f"the {len(clips)} clips have"
    else:
        who = f"{len(assumed)} of {len(clips)} clips (e.g. {assumed[0].id}) have"
    return [f"note: {who} no recorded frame rate (frame folders carry none); {DEFAULT_FPS:g} fps is assumed "
            "and recorded in each sample; --fps sets it"]


def _notes(config: HighspeedConfig, clips: list[Clip]) -> None:
    """One line each: a --resize that changes aspect ratios, sources below 120 fps."""
    if config.resize is not None and None not in config.resize:
        changed = [c for c in clips if abs(config.resize[0] * c.size[1] - config.resize[1] * c.size[0])
                   > 0.01 * c.size[0] * config.resize[1]]
        if changed:
            c, (w, h) = changed[0], config.resize
            note(f"note: --resize {w}x{h} changes the aspect ratio of {len(changed)} of {len(clips)} clips "
                 f"(e.g. {c.id}: {c.size[0]}x{c.size[1]}); --resize {w}x or x{h} keeps it")
    slow = [c for c in clips if clip_fps(config, c) < LOW_FPS]
    if slow:
        c = slow[0]
        note(f"warning: {len(slow)} of {len(clips)} clips are below {LOW_FPS:g} fps (e.g. {c.id}: "
             f"{clip_fps(config, c):g} fps); averaging frames that far apart ghosts instead of blurring "
             "(GoPro and Kim et al. 2017 used 240 fps)")


def synthesize(config: HighspeedConfig, options: RunOptions) -> Manifest:
    """Discover, plan, render and write a whole dataset (the ``highspeed`` command).

    When none of ``config.src`` exists and ``options.out`` is None (the typed
    try-out), the built-in sample clip is used
    instead, announced as a :class:`~blursynth.errors.BlursynthWarning` and
    recorded as ``src_fallback`` in the manifest's config
    (:func:`blursynth.sources.clips.sample_fallback`).

    Parameters
    ----------
    config : HighspeedConfig
        What to make.
    options : RunOptions
        Where and how to run.

    Returns
    -------
    Manifest

    Raises
    ------
    BlursynthError
        No usable clip, or some but not all ``--src`` entries missing.
    """
    sources, fallback = sample_fallback(config.src, try_out=options.out is None)
    if fallback:
        note(fallback["note"])
    clips, skipped = discover(sources, skip_bad=options.skip_bad, max_pixels=options.max_pixels)
    clips = [clip.planned() for clip in clips]  # absolute paths, and the stamps of the files
    estimate = check_budget(config, clips, options.out or default_out(KIND))
    try:
        specs, too_short = plan(config, clips, skip_bad=options.skip_bad)
    except BadSourceError as exc:
        raise BlursynthError(str(exc)) from None
    skipped += too_short
    if not specs:
        first = f" (e.g. {skipped[0]['source']}: {skipped[0]['reason']})" if skipped else ""
        raise BlursynthError(f"--src: no usable clip, every clip was skipped{first}")
    _notes(config, clips)
    recorded = config.to_dict()
    if fallback:
        recorded["src_fallback"] = fallback
    # Both counts of every video: what its header claims and what decodes (the plan's).
    videos = [{"source": c.id, "header_frames": c.header_frames, "decoded_frames": c.n_frames}
              for c in clips if c.kind == "video"]
    return run(KIND, recorded, config.seed, specs, render, options, skipped=skipped, sources=videos,
               announce=[estimate, *_assumed_rate(config, clips)])
