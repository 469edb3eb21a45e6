"""Camera-rotation blur from equirectangular panoramas (Argaw et al. 2021).

Argaw et al. ("Restoration of video frames from a single blurred image with
motion understanding", CVPRW 2021) look at a panorama projected onto a sphere
with a virtual camera, rotate the camera from an orientation q0 to
q1 = q0 * dq (dq from Euler angles drawn uniformly), render the frames between
them with quaternion slerp, as many as the rotation is large, and average them
into the blurred image. This module does that (see docs/panorama.md):

* source: :func:`discover` finds panoramas (8-bit jpg/png, HDR .hdr/.pfm/.exr),
  checks them (2:1, readable, finite non-negative radiance);
* plan: :func:`plan` draws each sample's orientation and motion from its own
  seed and fixes the number of frames so that no pixel moves more than
  ``--max-step`` pixels between two frames;
* render: :func:`render` turns one :class:`PanoramaSpec` into blur, sharp and
  latent frames: every frame is one ``cv2.remap`` of the linear panorama
  (cached per worker) through maps built from the rotated camera rays
  (:class:`blursynth.geometry.MapBuilder`), accumulated in float32 linear
  light and encoded once through the response curve;
* write: :func:`synthesize` hands the plan to :func:`blursynth.engine.run`.

The motion of a sample is ``q(t) = q_start exp(r(t) / 2)`` with
``r(t) = omega0 t + (omega1 - omega0) t^2 / (2 L)`` (time in frame intervals,
rotation vectors in the camera frame of ``q_start``). One frame (``--seq-len 1``)
has ``omega1 = omega0 = log(dq)``: ``q(t) = slerp(q0, q1, t)``, the paper's path.
A sequence of ``L`` frames has an independent ``omega1``: the rotation speed and
axis change smoothly, and frame ``j`` exposes ``t`` in ``[j, j + D]``.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import quaternion

from blursynth import geometry
from blursynth.config import SourceConfig
from blursynth.engine import RunOptions, run
from blursynth.errors import BadSourceError, BlursynthError
from blursynth.response import parse_response
from blursynth.seeds import sample_rng, sample_seed
from blursynth.shards import Manifest, Sample

KIND = "panorama"
BUILTIN_DIR = Path(__file__).parent / "data" / "panoramas"
LDR_EXTS = frozenset({".jpg", ".jpeg", ".png"})
HDR_EXTS = frozenset({".hdr", ".pfm", ".exr"})
# Median luminance of the sharp frame after exposure (a mid-grey card).
MIDDLE_GREY = 0.18
# Rec. 709 / sRGB luminance of linear RGB.
LUMA = (0.2126, 0.7152, 0.0722)
# Frames per torch.grid_sample call on the --device cuda path.
TORCH_BATCH = 32

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def builtin_panoramas() -> list[Path]:
    """The panoramas shipped with the package (two CC0 scenes, each as .jpg and .hdr)."""
    return sorted(p for p in BUILTIN_DIR.iterdir() if p.suffix.lower() in LDR_EXTS | HDR_EXTS)


def default_sources() -> tuple[str, ...]:
    """The default ``--src``: one rendition per built-in scene, the linear .hdr.

    Both renditions of a scene would be two sources with the same content, and a
    train/test split by source would then see the same scene on both sides.
    """
    return tuple(str(p) for p in builtin_panoramas() if p.suffix.lower() == ".hdr")


# ------------------------------------------------------------------ config
@dataclass(frozen=True)
class PanoramaConfig(SourceConfig):
    """Everything that determines the content of a panorama dataset.

    Angles are in degrees; ``size`` is ``(H, W)``. ``frames_per_degree=None``
    derives the frame count from ``max_step`` (see :func:`frames_per_radian`).
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

    def __post_init__(self):
        def bad(option, value, why):
            raise BlursynthError(f"--{option} {value}: {why}")

        if not self.src:
            raise BlursynthError("--src: give at least one panorama or folder")
        if self.n < 1:
            bad("n", self.n, "must be at least 1")
        if len(self.size) != 2 or min(self.size) < 1:
            bad("size", "x".join(map(str, self.size)), "must be two positive integers HxW")
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
        if self.device not in ("cpu", "cuda"):
            bad("device", self.device, "expected cpu or cuda")
        parse_response(self.response, self.gamma)  # validates --response/--gamma



# ----------------------------------------------------------------- sources
@dataclass(frozen=True)
class Panorama:
    """One usable panorama: id (path relative to its --src root), file, kind, size (W, H)."""

    id: str
    path: str
    kind: str  # "ldr" (8-bit, through the response curve) | "hdr" (linear radiance)
    size: tuple[int, int]


def _kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    return "ldr" if ext in LDR_EXTS else "hdr" if ext in HDR_EXTS else None


def _read_exr(path: Path, source_id: str) -> np.ndarray:
    try:
        import OpenEXR  # noqa: F401
    except ImportError:
        raise BadSourceError(source_id, f"{path}: reading .exr needs the OpenEXR Python bindings "
                                        "(pip install 'blursynth[exr]'), or convert it to .hdr/.pfm") from None
    try:
        if hasattr(OpenEXR, "File"):  # OpenEXR >= 3.3
            with OpenEXR.File(str(path)) as exr:
                channels = exr.channels()
                if "RGB" in channels:
                    rgb = np.asarray(channels["RGB"].pixels, dtype=np.float32)
                else:
                    rgb = np.stack([np.asarray(channels[c].pixels, dtype=np.float32) for c in "RGB"], axis=-1)
        else:  # the classic InputFile API
            import Imath
            exr = OpenEXR.InputFile(str(path))
            window = exr.header()["dataWindow"]
            w, h = window.max.x - window.min.x + 1, window.max.y - window.min.y + 1
            pt = Imath.PixelType(Imath.PixelType.FLOAT)
            rgb = np.stack([np.frombuffer(exr.channel(c, pt), np.float32).reshape(h, w) for c in "RGB"], axis=-1)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise BadSourceError(source_id, f"{path}: not a readable RGB OpenEXR image ({exc})") from None
    return np.ascontiguousarray(rgb)


def read_image(path: str | Path, kind: str, source_id: str) -> np.ndarray:
    """Decode a panorama: uint8 RGB (``kind="ldr"``) or float32 RGB radiance (``"hdr"``).

    Raises :class:`BadSourceError` when the file cannot be decoded, is not 2:1,
    or (HDR) holds NaN, infinite or negative values.
    """
    path = Path(path)
    if path.suffix.lower() == ".exr":
        image = _read_exr(path, source_id)
    else:
        flags = cv2.IMREAD_COLOR if kind == "ldr" else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR
        image = cv2.imread(str(path), flags)
        if image is None:
            raise BadSourceError(source_id, f"{path}: not a readable image")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if kind == "hdr":
            image = image.astype(np.float32, copy=False)
    check_panorama(image, path, source_id)
    return image


def check_panorama(image: np.ndarray, path, source_id: str) -> None:
    """Raise :class:`BadSourceError` unless ``image`` is a usable 2:1 panorama."""
    h, w = image.shape[:2]
    _check_shape(w, h, path, source_id)
    if image.dtype.kind == "f":
        finite = np.isfinite(image)
        if not finite.all():
            raise BadSourceError(source_id, f"{path}: {int(image.size - finite.sum())} values are NaN or "
                                            "infinite; HDR radiance must be finite")
        low = float(image.min())
        if low < 0:
            raise BadSourceError(source_id, f"{path}: {int((image < 0).sum())} values are negative "
                                            f"(down to {low:g}); HDR radiance must be >= 0")


def _check_shape(w: int, h: int, path, source_id: str) -> None:
    if h < 2:
        raise BadSourceError(source_id, f"{path}: {w}x{h} is too small for a panorama")
    if w != 2 * h:
        raise BadSourceError(source_id, f"{path}: {w}x{h} is not an equirectangular panorama "
                                        "(the width must be twice the height)")


def probe(path: str | Path, source_id: str) -> Panorama:
    """Check one panorama file; 8-bit files by their header, HDR files fully.

    An HDR file is decoded once here so that NaN or negative radiance stops the
    run before anything is written.
    """
    path = Path(path)
    kind = _kind(path)
    if kind == "ldr":
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(path) as im:
                w, h = im.size
        except (OSError, UnidentifiedImageError, ValueError):
            raise BadSourceError(source_id, f"{path}: not a readable image") from None
        _check_shape(w, h, path, source_id)
    else:
        image = read_image(path, "hdr", source_id)
        h, w = image.shape[:2]
    return Panorama(source_id, str(path), kind, (w, h))


def discover(sources, skip_bad: bool = False) -> tuple[list[Panorama], list[dict]]:
    """Find and check every panorama under ``sources`` (files or folders, searched recursively).

    Ids are paths relative to the folder given (a file given directly: its
    name). Returns ``(panoramas, skipped)`` sorted by id; without ``skip_bad``
    the first unusable panorama raises :class:`BadSourceError`.
    """
    exts = ", ".join(sorted(LDR_EXTS | HDR_EXTS))
    found: list[tuple[str, Path]] = []
    for root in map(Path, sources):
        if not root.exists():
            raise BlursynthError(f"--src {root}: no such file or folder")
        if root.is_file():
            if _kind(root) is None:
                raise BlursynthError(f"--src {root}: not a panorama image ({exts}) or a folder")
            found.append((root.name, root))
            continue
        for folder, dirs, files in os.walk(root, followlinks=True):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = Path(folder) / name
                if not name.startswith(".") and _kind(path) is not None:
                    found.append((path.relative_to(root).as_posix(), path))
    if not found:
        raise BlursynthError(f"--src {' '.join(map(str, sources))}: no panoramas ({exts}) found")
    ids = [pid for pid, _ in found]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise BlursynthError(f"--src: two panoramas have the same id {dupes[0]!r}; pass their common parent instead")
    panoramas, skipped = [], []
    for pid, path in sorted(found):
        try:
            panoramas.append(probe(path, pid))
        except BadSourceError as exc:
            if not skip_bad:
                raise
            skipped.append({"source": exc.source, "reason": exc.reason})
    return panoramas, skipped


def working_width(width: int, size: tuple[int, int], fov: float) -> int:
    """Width a panorama is resampled to before rendering.

    A panorama finer than the camera (more than ``2 pi f`` pixels around, ``f``
    the focal length) is first area-averaged, in linear light, to ``2 ceil(pi f)``
    pixels: bilinear sampling of a much finer image would alias. Coarser ones
    are used as they are.
    """
    target = 2 * math.ceil(math.pi * geometry.focal_length(size[1], fov))
    return min(width, target)


def _linear_rgbl(image: np.ndarray, kind: str, response_name: str, width: int) -> np.ndarray:
    """Linear float32 [H, W, 4]: RGB plus luminance (exposure needs it; remap is fastest on 4 channels)."""
    linear = parse_response(response_name).linearize(image) if kind == "ldr" else image
    if linear.shape[1] != width:
        linear = cv2.resize(linear, (width, width // 2), interpolation=cv2.INTER_AREA)
    luma = linear @ np.asarray(LUMA, dtype=np.float32)
    return np.concatenate([linear, luma[..., None]], axis=-1).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def _padded(path: str, stamp: tuple[int, int], source_id: str, kind: str, response_name: str,
            width: int) -> np.ndarray:
    rgbl = _linear_rgbl(read_image(path, kind, source_id), kind, response_name, width)
    padded = geometry.pad_equirect(rgbl)
    padded.setflags(write=False)
    return padded


def load_panorama(path: str | Path, kind: str, response_name: str, width: int,
                  source_id: str | None = None) -> np.ndarray:
    """The linear panorama ready to sample: float32 ``[H + 2, W + 2, 4]`` (RGB, luminance).

    Resampled to ``width`` (see :func:`working_width`) and padded by
    :func:`blursynth.geometry.pad_equirect`. Kept in a small per-process cache
    keyed by path, modification time and size, so a worker decodes a panorama
    once for all the samples it renders from it.
    """
    path = str(path)
    source_id = source_id or Path(path).name
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BadSourceError(source_id, f"{path}: cannot read ({exc.strerror})") from None
    return _padded(path, (st.st_mtime_ns, st.st_size), source_id, kind, response_name, int(width))


# -------------------------------------------------------------------- plan
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
    kind: str
    pano_width: int
    size: tuple[int, int]
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

    @property
    def span(self) -> float:
        """Time over which ``dr/dt`` goes from ``omega0`` to ``omega1``."""
        return float(self.seq_len)

    def orientation(self, t):
        """Camera orientation at time ``t`` (frame intervals; an array gives an array)."""
        return geometry.path_orientation(geometry.from_wxyz(self.q_start), self.omega0, self.omega1,
                                         self.span, t)

    def rotations(self, j: int, offsets) -> np.ndarray:
        """float32 ``[n, 3, 3]`` world <- camera matrices at fractions ``offsets`` of exposure ``j``."""
        times = j + self.duty * np.array([float(o) for o in offsets], dtype=np.float64)
        return geometry.rotation_matrix(self.orientation(times))


def frames_per_radian(config: PanoramaConfig) -> float:
    """``k`` of ``n = 1 + max(1, ceil(k theta))``.

    ``--frames-per-degree`` gives it directly; otherwise ``k = M / max_step``
    with ``M`` the largest image speed of any rotation
    (:func:`blursynth.geometry.max_flow_per_radian`), so that no pixel moves
    more than ``--max-step`` pixels between consecutive frames.
    """
    if config.frames_per_degree is not None:
        return config.frames_per_degree * 180.0 / math.pi
    return geometry.max_flow_per_radian(config.size, config.fov) / config.max_step


def n_frames_for(angle: float, k: float) -> int:
    """Frames that sample a rotation of ``angle`` radians with ``k`` frames per radian.

    ``n - 1`` gaps of at most ``1 / k`` radians each: ``n = 1 + max(1, ceil(k angle))``.
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
    """
    rng = sample_rng(config.seed, index)
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
        index=index, seed=sample_seed(config.seed, index), source=pano.id, path=pano.path, kind=pano.kind,
        pano_width=working_width(pano.size[0], config.size, config.fov), size=tuple(config.size),
        fov=float(config.fov), yaw_deg=yaw, pitch_deg=pitch,
        q_start=tuple(float(v) for v in geometry.as_wxyz(q_start)),
        omega0=tuple(float(v) for v in omega0), omega1=tuple(float(v) for v in omega1),
        seq_len=config.seq_len, duty=float(duty), n_frames=n_frames, latent=config.latent,
        response=config.response_name, device=config.device)


def plan(config: PanoramaConfig, panoramas: list[Panorama] | None = None,
         skip_bad: bool = False) -> tuple[list[PanoramaSpec], list[dict]]:
    """Config (+ checked panoramas) -> ``(specs, skipped)``, specs in index order.

    Without ``panoramas`` the sources are found with :func:`discover`.
    Sample ``i`` of ``N`` uses panorama ``floor(i S / N)`` of the ``S`` usable
    ones (sorted by id): consecutive samples share a panorama, so a worker
    rendering one shard decodes few panoramas.
    """
    skipped: list[dict] = []
    if panoramas is None:
        panoramas, skipped = discover(config.src, skip_bad=skip_bad)
    if not panoramas:
        first = f" (e.g. {skipped[0]['source']}: {skipped[0]['reason']})" if skipped else ""
        raise BlursynthError(f"--src: no usable panorama, every one was skipped{first}")
    k = frames_per_radian(config)
    s = len(panoramas)
    specs = [plan_sample(config, i, panoramas[i * s // config.n], k) for i in range(config.n)]
    return specs, skipped


# ------------------------------------------------------------------ render
def render_view(pano: np.ndarray, q: np.quaternion, size: tuple[int, int], fov: float) -> np.ndarray:
    """One pinhole view of a padded linear panorama: float32 ``[H, W, C]``.

    ``pano`` is a :func:`load_panorama` array (or any image padded by
    :func:`blursynth.geometry.pad_equirect`); sampling is bilinear.
    """
    hw = (pano.shape[0] - 2 * geometry.PAD, pano.shape[1] - 2 * geometry.PAD)
    map_x, map_y = geometry.MapBuilder(size, fov, hw)(geometry.rotation_matrix(q))
    return cv2.remap(pano, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class _CpuViews:
    """``cv2.remap`` renderer reusing its map and frame buffers."""

    def __init__(self, pano: np.ndarray, size: tuple[int, int], fov: float):
        self.pano = pano
        hw = (pano.shape[0] - 2 * geometry.PAD, pano.shape[1] - 2 * geometry.PAD)
        self.maps = geometry.MapBuilder(size, fov, hw)
        self.frame = np.empty((*size, pano.shape[2]), np.float32)

    def render(self, rotations: np.ndarray, keep: list[bool]):
        """Sum of the views of ``rotations`` ``[n, 3, 3]`` and a copy of the ones with ``keep``."""
        total = np.zeros_like(self.frame)
        kept = {}
        for i, rotation in enumerate(rotations):
            map_x, map_y = self.maps(rotation)
            cv2.remap(self.pano, map_x, map_y, cv2.INTER_LINEAR, dst=self.frame,
                      borderMode=cv2.BORDER_REPLICATE)
            cv2.add(total, self.frame, dst=total)
            if keep[i]:
                kept[i] = self.frame.copy()
        return total, kept


class TorchViews:
    """The same renderer on ``torch.nn.functional.grid_sample`` (``--device cuda``).

    The panorama is padded exactly as on the CPU path (seam wrapped, poles
    continued), and pixel coordinates become ``grid_sample``'s normalized ones
    with ``align_corners=True``: ``g = 2 x / (W_padded - 1) - 1``. Frames are
    rendered in batches stacked along the grid's height.
    """

    def __init__(self, pano: np.ndarray, size: tuple[int, int], fov: float, device: str = "cuda"):
        import torch
        self.torch = torch
        self.device = torch.device(device)
        self.size = tuple(size)
        self.pano = torch.from_numpy(np.array(pano)).to(self.device).permute(2, 0, 1).contiguous()[None]
        self.rays = torch.from_numpy(np.array(geometry.camera_rays(self.size, float(fov)))).to(self.device)
        ph, pw = pano.shape[0] - 2 * geometry.PAD, pano.shape[1] - 2 * geometry.PAD
        hp, wp = pano.shape[:2]
        # pixel -> normalized: g = 2 x / (wp - 1) - 1, folded into one scale and shift per axis
        self.sx = (pw / (2 * math.pi)) * 2 / (wp - 1)
        self.ox = (pw / 2 - 0.5 + geometry.PAD) * 2 / (wp - 1) - 1
        self.sy = (ph / math.pi) * 2 / (hp - 1)
        self.oy = (geometry.PAD - 0.5) * 2 / (hp - 1) - 1

    def _batch(self, rotations: np.ndarray):
        torch = self.torch
        h, w = self.size
        mats = torch.from_numpy(np.ascontiguousarray(rotations, dtype=np.float32)).to(self.device)
        world = mats @ self.rays  # [B, 3, N]
        gx = torch.atan2(world[:, 0], world[:, 2]) * self.sx + self.ox
        gy = torch.acos(world[:, 1].clamp(-1.0, 1.0)) * self.sy + self.oy
        grid = torch.stack([gx, gy], dim=-1).reshape(1, len(rotations) * h, w, 2)
        out = torch.nn.functional.grid_sample(self.pano, grid, mode="bilinear", padding_mode="border",
                                              align_corners=True)
        return out.reshape(-1, len(rotations), h, w).permute(1, 2, 3, 0)  # [B, H, W, C]

    def render(self, rotations: np.ndarray, keep: list[bool]):
        torch = self.torch
        h, w = self.size
        total = torch.zeros((h, w, self.pano.shape[1]), dtype=torch.float32, device=self.device)
        kept = {}
        with torch.no_grad():
            for start in range(0, len(rotations), TORCH_BATCH):
                views = self._batch(rotations[start:start + TORCH_BATCH])
                total += views.sum(dim=0)
                for i in range(start, min(start + TORCH_BATCH, len(rotations))):
                    if keep[i]:
                        kept[i] = views[i - start].cpu().numpy()
        return total.cpu().numpy(), kept


_TORCH_VIEWS: dict = {}


def _views(spec: PanoramaSpec, pano: np.ndarray):
    if spec.device == "cpu":
        return _CpuViews(pano, spec.size, spec.fov)
    # Keep the panorama on the device between samples (the numpy array is
    # held too, so its id stays unique while the entry lives).
    key = (id(pano), spec.size, spec.fov, spec.device)
    if key not in _TORCH_VIEWS:
        if len(_TORCH_VIEWS) >= 2:
            _TORCH_VIEWS.pop(next(iter(_TORCH_VIEWS)))
        _TORCH_VIEWS[key] = (pano, TorchViews(pano, spec.size, spec.fov, spec.device))
    return _TORCH_VIEWS[key][1]


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


def render(spec: PanoramaSpec) -> Sample:
    """Render one sample (see the module docstring and docs/panorama.md)."""
    response = parse_response(spec.response)
    pano = load_panorama(spec.path, spec.kind, spec.response, spec.pano_width, spec.source)
    views = _views(spec, pano)
    h, w = spec.size
    L, K = spec.seq_len, spec.latent
    half = Fraction(1, 2)

    # Pass 1: the sharp mid-exposure frames, which also set the exposure.
    sharp_rot = np.stack([spec.rotations(j, [half])[0] for j in range(L)])
    _, sharp_lin = views.render(sharp_rot, [True] * L)
    if spec.kind == "hdr":
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
        keep = [o in latent_offsets for o in blur_offsets]
        extra = [o for o in latent_offsets if o not in blur_offsets and o != half]
        total, kept = views.render(spec.rotations(j, blur_offsets), keep)
        frames = {o: kept[i] for i, o in enumerate(blur_offsets) if i in kept}
        frames[half] = sharp_lin[j]
        if extra:
            _, more = views.render(spec.rotations(j, extra), [True] * len(extra))
            frames.update({o: more[i] for i, o in enumerate(extra)})
        # The average in linear light; its 1/n and the exposure fold into the encoder's scale.
        blur[j] = response.encode(total[..., :3], scale=exposure / n)
        sharp[j] = response.encode(sharp_lin[j][..., :3], scale=exposure)
        for m, o in enumerate(latent_offsets):
            latent[j, m] = sharp[j] if o == half else response.encode(frames[o][..., :3], scale=exposure)
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
        "index": spec.index, "seed": spec.seed, "source": spec.source, "hdr": int(spec.kind == "hdr"),
        "q0": per_frame(q0s), "q1": per_frame(q1s), "q_sharp": per_frame(qmid),
        "angle_deg": per_frame(angles), "n_frames": per_frame(spec.n_frames),
        "yaw_deg": spec.yaw_deg, "pitch_deg": spec.pitch_deg,
        "omega0": np.asarray(spec.omega0), "omega1": np.asarray(spec.omega1),
        "fov_deg": spec.fov, "focal_px": geometry.focal_length(w, spec.fov), "exposure": float(exposure),
    }
    return Sample(arrays, meta)


# --------------------------------------------------------------- synthesize
def check_device(device: str) -> None:
    """Fail before planning when ``--device cuda`` cannot work here."""
    if device == "cuda":
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            raise BlursynthError("--device cuda: PyTorch is not installed") from None
        if not torch.cuda.is_available():
            raise BlursynthError("--device cuda: PyTorch sees no CUDA device here; use --device cpu")


def synthesize(config: PanoramaConfig, options: RunOptions) -> Manifest:
    """Discover, plan, render and write a whole dataset (the ``panorama`` command)."""
    check_device(config.device)
    specs, skipped = plan(config, skip_bad=options.skip_bad)
    return run(KIND, config.to_dict(), config.seed, specs, render, options, skipped=skipped)
