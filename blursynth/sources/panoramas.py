"""Equirectangular panoramas: find them, check them, read them, cache them.

``--src`` takes panorama files and folders searched recursively (see
:mod:`blursynth.sources.discovery`); a panorama's id is its path relative to
the folder given. Supported files:

* 8-bit ``.jpg``/``.jpeg``/``.png`` (``dynamic_range="ldr"``): display-referred, taken
  to linear light through the response curve (``--response``);
* ``.hdr`` (Radiance), ``.pfm`` and ``.exr`` (``dynamic_range="hdr"``): linear radiance,
  which must be finite and non-negative.

Every panorama must be 2:1 (equirectangular) and declare at most 400
megapixels (``--max-megapixels``). Planning (:func:`discover`,
:func:`probe`) reads only file headers (:mod:`blursynth.sources.headers`);
the pixels are decoded (:func:`read_image`; large JPEGs at a reduced size,
:func:`jpeg_reduction`) and checked (HDR: finite, non-negative) by the worker
that renders them, through :func:`blursynth.panorama.load.load_panorama`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from blursynth.errors import BadSourceError, BlursynthError
from blursynth.sources import headers
from blursynth.sources.stamps import Stamp, take as take_stamp
from blursynth.sources.discovery import discover as discover_sources
from blursynth.sources.discovery import relative_id, walk

BUILTIN_DIR = Path(__file__).parent.parent / "data" / "panoramas"
# Six more CC0 scenes that no default dataset uses: the sources of validate's panorama
# reference test set (reference_models.sample_data). Not under BUILTIN_DIR, which is
# searched recursively when it is a --src.
RESERVED_DIR = Path(__file__).parent.parent / "data" / "reference-panoramas"
LDR_EXTS = frozenset({".jpg", ".jpeg", ".png"})
HDR_EXTS = frozenset({".hdr", ".pfm", ".exr"})
# Rec. 709 / sRGB luminance of linear RGB.
LUMA = (0.2126, 0.7152, 0.0722)

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def builtin_panoramas() -> list[Path]:
    """The panoramas shipped with the package (two CC0 scenes, each as .jpg and .hdr)."""
    return sorted(p for p in BUILTIN_DIR.iterdir() if p.suffix.lower() in LDR_EXTS | HDR_EXTS)


def reserved_panoramas() -> list[Path]:
    """The six reserved CC0 scenes (.hdr), kept out of every default dataset for validate's reference test set."""
    return sorted(p for p in RESERVED_DIR.iterdir() if p.suffix.lower() in HDR_EXTS)


def default_sources() -> tuple[str, ...]:
    """The default ``--src``: one rendition per built-in scene, the linear .hdr.

    Both renditions of a scene would be two sources with the same content, and a
    train/test split by source would then see the same scene on both sides.
    """
    return tuple(str(p) for p in builtin_panoramas() if p.suffix.lower() == ".hdr")


@dataclass(frozen=True)
class Panorama:
    """One usable panorama: id (path relative to its --src root), file, dynamic range, size (W, H),
    and once :meth:`planned` took it, the file's stamp (:mod:`blursynth.sources.stamps`)."""

    id: str
    path: str
    dynamic_range: str  # "ldr" (8-bit, through the response curve) | "hdr" (linear radiance)
    size: tuple[int, int]
    stamps: tuple[Stamp, ...] = ()  # see planned()

    def planned(self) -> "Panorama":
        """The panorama as a plan records it: an absolute ``path`` (a Dask worker resolves
        a relative one against its own working folder) and the stamp of its file, taken now."""
        path = Path(self.path).absolute()
        return replace(self, path=str(path), stamps=(take_stamp(path),))


def dynamic_range_of(path: Path) -> str | None:
    """``"ldr"``, ``"hdr"`` or None (not a panorama file), by the file's extension."""
    ext = path.suffix.lower()
    return "ldr" if ext in LDR_EXTS else "hdr" if ext in HDR_EXTS else None


def _openexr(path: Path, source_id: str):
    """The OpenEXR bindings, or a :class:`BadSourceError` saying how to get them."""
    try:
        import OpenEXR
    except ImportError:
        raise BadSourceError(source_id, f"{path}: reading .exr needs the OpenEXR Python bindings "
                                        "(pip install 'blursynth[exr]'), or convert it to .hdr/.pfm") from None
    return OpenEXR


def _read_exr(path: Path, source_id: str) -> np.ndarray:
    OpenEXR = _openexr(path, source_id)
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


# The reduced JPEG decode must leave at least this many times the working
# width, so that the linear-light area resampling that follows averages over
# several of its pixels (docs/panorama.md, "Resolution": measured accuracy).
REDUCED_MARGIN = 1.5


def jpeg_reduction(width: int, target: int) -> int:
    """The libjpeg scale-down ``r`` (4, 2 or 1) at which to decode a JPEG ``width`` wide.

    libjpeg decodes a JPEG at 1/2 or 1/4 of its size by computing fewer output
    samples of each 8x8 DCT block (``cv2.IMREAD_REDUCED_COLOR_r``), at a
    fraction of the cost of a full decode. Those samples are averages in the
    encoded (gamma) domain, not in linear light, and the area resampling to
    ``target`` that follows can only average whole reduced pixels. So ``r`` is
    the largest of 4 and 2 with ``ceil(width / r) >= REDUCED_MARGIN * target``
    (1 if neither is): e.g. a 9104-wide SUN360 panorama and the default camera
    (``target`` 1394) give 4. 1/8 is never used: its 8x8 block means differ
    from linear-light means by too much on textured content (docs/panorama.md).
    """
    for r in (4, 2):
        if -(-width // r) >= REDUCED_MARGIN * target:
            return r
    return 1


_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}


def read_image(path: str | Path, dynamic_range: str, source_id: str, reduction: int = 1) -> np.ndarray:
    """Decode a panorama: uint8 RGB (``dynamic_range="ldr"``) or float32 RGB radiance (``"hdr"``).

    Parameters
    ----------
    path : str or Path
        A .jpg/.png, .hdr, .pfm or .exr file (.exr needs the OpenEXR bindings).
    dynamic_range : {"ldr", "hdr"}
        How to decode it (see :func:`dynamic_range_of`).
    source_id : str
        The panorama's id, named in errors (and by ``--skip-bad``).
    reduction : int
        1, 2 or 4: decode a JPEG at that fraction of its size
        (:func:`jpeg_reduction`); ignored for other files.

    Returns
    -------
    ndarray
        ``[H, W, 3]`` RGB, uint8 or float32.

    Raises
    ------
    BadSourceError
        The file cannot be decoded, is not 2:1 (checked at full size), or (HDR)
        holds NaN, infinite or negative values. This runs in the worker that
        renders the panorama: planning reads only headers (:func:`probe`).
    """
    path = Path(path)
    if path.suffix.lower() == ".exr":
        image = _read_exr(path, source_id)
    else:
        if dynamic_range == "ldr":
            jpeg = path.suffix.lower() in (".jpg", ".jpeg")
            # EXIF orientation is ignored: the size checked from the header at
            # plan time is then the size decoded here.
            flags = (_REDUCED[reduction] if jpeg else cv2.IMREAD_COLOR) | cv2.IMREAD_IGNORE_ORIENTATION
        else:
            flags = cv2.IMREAD_UNCHANGED  # OpenCV 5 cannot read a grey PFM as colour
        image = cv2.imread(str(path), flags)
        if image is None:
            raise BadSourceError(source_id, f"{path}: not a readable image")
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB if image.ndim == 2 else cv2.COLOR_BGR2RGB)
        if dynamic_range == "hdr":
            image = image.astype(np.float32, copy=False)
        elif jpeg and reduction > 1:
            return image  # 2:1 was checked on the header; ceil(W / r) x ceil(H / r) need not be
    check_panorama(image, path, source_id)
    return image


def check_panorama(image: np.ndarray, path, source_id: str) -> None:
    """Raise :class:`BadSourceError` unless ``image`` is a usable 2:1 panorama.

    Parameters
    ----------
    image : ndarray
        ``[H, W, C]``; float images (HDR radiance) must hold finite,
        non-negative values.
    path : str or Path
        The file it came from, named in the error.
    source_id : str
        The panorama's id.
    """
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


_HEADER_READERS = {".hdr": headers.radiance_size, ".pfm": headers.pfm_size, ".exr": headers.exr_size}


def image_size(path: str | Path, source_id: str, max_pixels: int | None = None) -> tuple[int, int]:
    """``(width, height)`` of a panorama file from its header alone (no decoding).

    Parameters
    ----------
    path : str or Path
        The file.
    source_id : str
        Its id, named in errors.
    max_pixels : int, optional
        Refuse a header that declares more pixels (:func:`blursynth.sources.headers.check_pixels`).

    Returns
    -------
    (int, int)

    Raises
    ------
    BadSourceError
        The header cannot be read, declares more than ``max_pixels``, or (.exr)
        the OpenEXR bindings are missing (the reason names the file).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".exr":
        _openexr(path, source_id)  # said at plan time, not when a worker decodes it
    reader = _HEADER_READERS.get(ext, headers.raster_size)
    try:
        size = reader(path)
        if max_pixels is not None:
            headers.check_pixels(size, max_pixels)
        return size
    except OSError as exc:
        raise BadSourceError(source_id, f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise BadSourceError(source_id, f"{path}: {exc}") from None


def probe(path: str | Path, source_id: str, max_pixels: int = headers.PANORAMA_PIXELS) -> Panorama:
    """Check one panorama file from its header: readable, 2:1, at most ``max_pixels``.

    Pixels are not decoded: NaN or negative HDR radiance is found by the
    worker that loads the panorama (:func:`read_image`), so that planning a
    large collection costs a few hundred bytes per file, and a header that
    declares more than ``max_pixels`` is refused before anything decodes it.

    Parameters
    ----------
    path : str or Path
        The file.
    source_id : str
        Its id (the path relative to its ``--src`` folder).
    max_pixels : int
        The pixel limit (``--max-megapixels``).

    Returns
    -------
    Panorama

    Raises
    ------
    BadSourceError
        The header is unreadable or the size is not 2:1.
    """
    path = Path(path)
    w, h = image_size(path, source_id, max_pixels)
    _check_shape(w, h, path, source_id)
    return Panorama(source_id, str(path), dynamic_range_of(path), (w, h))


def _candidates(root: Path, max_pixels: int):
    """``(id, probe)`` of every panorama under one ``--src`` entry."""
    if root.is_file():
        if dynamic_range_of(root) is None:
            raise BlursynthError(f"--src {root}: not a panorama image ({_EXTS}) or a folder")
        return [(root.name, lambda: probe(root, root.name, max_pixels))]
    return [(pid, lambda p=folder / name, i=pid: probe(p, i, max_pixels))
            for folder, rel, files in walk(root)
            for name in files if dynamic_range_of(Path(name)) is not None
            for pid in [relative_id(rel, name)]]


_EXTS = ", ".join(sorted(LDR_EXTS | HDR_EXTS))


def discover(sources, skip_bad: bool = False,
             max_pixels: int | None = None) -> tuple[list[Panorama], list[dict]]:
    """Find and check every panorama under ``sources`` (files or folders, searched recursively).

    Parameters
    ----------
    sources : iterable of str or Path
        The ``--src`` entries.
    skip_bad : bool
        List unusable panoramas instead of raising.
    max_pixels : int, optional
        Refuse a panorama whose header declares more pixels; default
        :data:`blursynth.sources.headers.PANORAMA_PIXELS` (400 megapixels).

    Returns
    -------
    panoramas : list of Panorama
        Sorted by id (the path relative to the folder given; a file given
        directly: its name).
    skipped : list of dict
        ``{"source": id, "reason": ...}`` per unusable panorama (``skip_bad``).

    Raises
    ------
    BadSourceError
        The first unusable panorama, without ``skip_bad``.
    """
    limit = headers.PANORAMA_PIXELS if max_pixels is None else max_pixels
    return discover_sources(list(sources), functools.partial(_candidates, max_pixels=limit), noun="panorama",
                            skip_bad=skip_bad, nothing_found=f"no panoramas ({_EXTS}) found")
