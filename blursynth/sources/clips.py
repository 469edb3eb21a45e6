"""High-speed clips: find them, probe them, and read their frames.

``--src`` takes any mix of

* a folder of frames (png/jpg/tif), ordered by the last number in each name;
* a tree of such folders (GoPro_Large_all, Adobe240): every folder holding
  frames is one clip;
* video files (mp4/avi/mov/mkv), decoded with OpenCV.

A clip's id is its path relative to the ``--src`` root it was found under (for a
folder or file given directly: its name), POSIX-style, so ids are stable across
machines (:mod:`blursynth.sources.discovery`). Probing a frame folder reads only
image headers (:mod:`blursynth.sources.headers`), and a frame (or a video's
reported frame size) of more than 100 megapixels is refused before any pixel
is decoded (``--max-megapixels`` raises the limit). Probing a video counts the frames that really decode,
because container headers lie (an AVI whose header claims 444 frames may hold
68 that decode): the plan uses that count, never the header's, so a clip never
ends mid-run. The count is cached per file, keyed by size and modification
time (:func:`decodable_frames`), so a re-run does not decode the video twice.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from blursynth.errors import BadSourceError, BlursynthError
from blursynth.jsondoc import load_json
from blursynth.sources import headers
from blursynth.sources.stamps import Stamp, take as take_stamp
from blursynth.sources.discovery import discover as discover_sources
from blursynth.sources.discovery import relative_id, walk

FRAME_EXTS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
VIDEO_EXTS = frozenset({".mp4", ".avi", ".mov", ".mkv"})
_NUMBER = re.compile(r"(\d+)")

cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
# FFmpeg's own messages about a damaged stream ("Slice pointer chain broken")
# would break the one-line errors; blursynth reports what it finds itself.
# Read by OpenCV when it opens its first video.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# Videos whose decodable frame count is cached (see decodable_frames).
FRAME_CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class Clip:
    """One clip: a folder of ordered frames or a video file.

    Attributes
    ----------
    id : str
        Path relative to its ``--src`` root, POSIX-style.
    path : str
        The folder or video file.
    stored_as : {"frames", "video"}
        A folder of frame files, or one video file.
    n_frames : int
    size : (int, int)
        ``(W, H)`` of every frame.
    files : tuple of str
        Frame file names in order (``stored_as == "frames"``).
    stamps : tuple of Stamp
        Size and modification time of each frame file (in the order of
        ``files``) or of the video, once :meth:`planned` took them.
    """

    id: str
    path: str
    stored_as: str  # "frames" | "video"
    n_frames: int
    size: tuple[int, int]  # (W, H)
    files: tuple[str, ...] = ()  # frame file names in order (stored_as == "frames")
    fps: float | None = None  # the container's frame rate (videos that report one)
    header_frames: int | None = None  # what a video's container claims (stored_as == "video")
    stamps: tuple[Stamp, ...] = ()  # see planned()

    def planned(self) -> "Clip":
        """The clip as a plan records it: an absolute ``path`` (a Dask worker resolves a
        relative one against its own working folder) and the :mod:`stamps
        <blursynth.sources.stamps>` of its files, taken now."""
        path = Path(self.path).absolute()
        files = [path / name for name in self.files] if self.stored_as == "frames" else [path]
        return replace(self, path=str(path), stamps=tuple(take_stamp(f) for f in files))


def frame_number(name: str) -> int | None:
    """The frame number of a file name: its last run of digits."""
    found = _NUMBER.findall(Path(name).stem)
    return int(found[-1]) if found else None


def _order_frames(folder: Path, names: list[str], clip_id: str) -> tuple[str, ...]:
    numbered = []
    for name in names:
        number = frame_number(name)
        if number is None:
            raise BadSourceError(clip_id, f"cannot order frames: {folder / name} has no frame number in its name")
        numbered.append((number, name))
    numbered.sort()
    for (a, name_a), (b, name_b) in zip(numbered, numbered[1:]):
        if a == b:
            raise BadSourceError(clip_id, f"frames {folder / name_a} and {folder / name_b} have the same number {a}")
    return tuple(name for _, name in numbered)


def _probe_frames(folder: Path, clip_id: str, names: list[str], max_pixels: int) -> Clip:
    files = _order_frames(folder, names, clip_id)
    size = None
    for name in files:
        path = folder / name
        try:
            this = headers.raster_size(path)
            headers.check_pixels(this, max_pixels)
        except OSError as exc:
            raise BadSourceError(clip_id, f"{path}: cannot read ({exc.strerror})") from None
        except ValueError as exc:
            raise BadSourceError(clip_id, f"{path}: {exc}") from None
        if size is None:
            size = this
        elif this != size:
            raise BadSourceError(
                clip_id, f"{path}: frame size {this[0]}x{this[1]} differs from the clip's {size[0]}x{size[1]}")
    return Clip(clip_id, str(folder), "frames", len(files), size, files)


def _probe_video(path: Path, clip_id: str, max_pixels: int) -> Clip:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise BadSourceError(clip_id, f"{path}: OpenCV cannot open this video")
        header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        w = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS))
    finally:
        cap.release()
    if w <= 0 or h <= 0:
        raise BadSourceError(clip_id, f"{path}: the video reports no frame size")
    try:
        headers.check_pixels((w, h), max_pixels)  # before a frame is decoded (counted)
    except ValueError as exc:
        raise BadSourceError(clip_id, f"{path}: {exc}") from None
    n = decodable_frames(path, clip_id)
    if n <= 0:
        raise BadSourceError(clip_id, f"{path}: no frame decodes (the header claims {max(header, 0)})")
    return Clip(clip_id, str(path), "video", n, (w, h), fps=round(fps, 3) if 0 < fps < 10_000 else None,
                header_frames=max(header, 0))


def _count_decodable(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    try:
        while cap.grab():  # decodes (without the colour conversion of read)
            n += 1
    finally:
        cap.release()
    return n


def decodable_frames(path: str | Path, clip_id: str) -> int:
    """The number of frames of a video that really decode, counted once per file.

    The count is kept in ``video-frames.json`` in the per-user cache folder
    (:func:`blursynth.cache.cache_dir`: ``$BLURSYNTH_CACHE``, else
    ``$XDG_CACHE_HOME/blursynth`` or ``~/.cache/blursynth``), keyed by
    the file's absolute path, size and modification time; a changed file is
    counted again. A cache that cannot be read or written only costs time.

    Parameters
    ----------
    path : str or Path
        The video.
    clip_id : str
        Its id, for errors.

    Returns
    -------
    int
        Frames that decode from the start, in order, up to the first that does not.
    """
    from blursynth.atomic import atomic_write_bytes
    from blursynth.cache import cache_dir

    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise BadSourceError(clip_id, f"{path}: cannot read ({exc.strerror})") from None
    key, stamp = str(path.resolve()), {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    cache_file = cache_dir() / "video-frames.json"
    try:
        cache = load_json(cache_file, "cache file")  # a regular file, capped: a FIFO there must not hang
        if not isinstance(cache, dict):
            cache = {}
    except BlursynthError:
        cache = {}
    hit = cache.get(key)
    if isinstance(hit, dict) and {k: hit.get(k) for k in stamp} == stamp and isinstance(hit.get("frames"), int):
        return hit["frames"]
    n = _count_decodable(path)
    cache.pop(key, None)
    cache[key] = {**stamp, "frames": n}
    while len(cache) > FRAME_CACHE_ENTRIES:  # the oldest entries first
        cache.pop(next(iter(cache)))
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cache_file, json.dumps(cache, indent=0).encode())
    except OSError:
        pass
    return n


def _candidates(root: Path, max_pixels: int):
    """``(id, probe)`` of every clip under one ``--src`` entry (see :mod:`.discovery`)."""
    if root.is_file():
        if root.suffix.lower() not in VIDEO_EXTS:
            raise BlursynthError(f"--src {root}: not a video ({', '.join(sorted(VIDEO_EXTS))}) or a folder")
        return [(root.name, lambda r=root: _probe_video(r, r.name, max_pixels))]
    found = []
    for folder, rel, files in walk(root):
        frames = [f for f in files if Path(f).suffix.lower() in FRAME_EXTS]
        videos = [f for f in files if Path(f).suffix.lower() in VIDEO_EXTS]
        if frames:
            base = root.name if rel == "." else rel
            found.append((base, lambda f=folder, b=base, n=frames: _probe_frames(f, b, n, max_pixels)))
        for video in videos:
            vid = relative_id(rel, video)
            found.append((vid, lambda p=folder / video, v=vid: _probe_video(p, v, max_pixels)))
    return found


def discover(sources: Iterable[str | Path], skip_bad: bool = False,
             max_pixels: int | None = None) -> tuple[list[Clip], list[dict]]:
    """Find and probe every clip under ``sources``.

    Parameters
    ----------
    sources : iterable of str or Path
        The ``--src`` entries: videos, frame folders or trees of them.
    skip_bad : bool
        List unusable clips instead of raising.
    max_pixels : int, optional
        Refuse a clip whose frames (image headers, a video's reported size)
        declare more pixels; default
        :data:`blursynth.sources.headers.FRAME_PIXELS` (100 megapixels).

    Returns
    -------
    clips : list of Clip
        Sorted by id.
    skipped : list of dict
        ``{"source": id, "reason": ...}`` per unusable clip (``skip_bad``).

    Raises
    ------
    BadSourceError
        The first unusable clip, without ``skip_bad``.
    """
    limit = headers.FRAME_PIXELS if max_pixels is None else max_pixels
    return discover_sources(
        list(sources), functools.partial(_candidates, max_pixels=limit), noun="clip", skip_bad=skip_bad,
        nothing_found=(f"no frames ({', '.join(sorted(FRAME_EXTS))}) "
                       f"or videos ({', '.join(sorted(VIDEO_EXTS))}) found"))


# --------------------------------------------------------------- decoding
def decode_frame(path: str | Path, clip_id: str) -> np.ndarray:
    """Decode one frame file to uint8 BGR ``[H, W, 3]``.

    Parameters
    ----------
    path : str or Path
        The image file.
    clip_id : str
        The clip's id, named in errors.

    Returns
    -------
    ndarray

    Raises
    ------
    BadSourceError
        The file cannot be read or decoded.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise BadSourceError(clip_id, f"{path}: cannot read ({exc.strerror})") from None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    if image is None:
        raise BadSourceError(clip_id, f"{path}: corrupt or unreadable frame")
    return image


class VideoReader:
    """Sequential frame access to a video; forward jumps decode-and-drop (``grab``).

    Seeking by ``CAP_PROP_POS_FRAMES`` is not frame-exact for every codec, so
    a reader only moves forward; going back reopens the file.

    Parameters
    ----------
    path : str
        The video file.
    clip_id : str
        The clip's id, named in errors.
    """

    def __init__(self, path: str, clip_id: str):
        self.path, self.clip_id = path, clip_id
        self._cap = None
        self._next = 0

    def _open(self):
        if self._cap is not None:
            self._cap.release()
        self._cap = cv2.VideoCapture(self.path)
        if not self._cap.isOpened():
            raise BadSourceError(self.clip_id, f"{self.path}: OpenCV cannot open this video")
        self._next = 0

    def read(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based), uint8 BGR ``[H, W, 3]``.

        Raises
        ------
        BadSourceError
            The video ends before ``index`` or the frame cannot be decoded.
        """
        if self._cap is None or index < self._next:
            self._open()
        while self._next < index:
            if not self._cap.grab():
                raise BadSourceError(self.clip_id, f"{self.path}: the video ends at frame {self._next}")
            self._next += 1
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise BadSourceError(self.clip_id, f"{self.path}: cannot decode frame {index} (truncated video?)")
        self._next += 1
        return frame

    def close(self):
        """Release the open file (the next :meth:`read` reopens it)."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
