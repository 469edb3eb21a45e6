"""The footage ``deblur`` reads: a folder of frames, one image or a video, probed before any work.

:func:`open_footage` finds the frames of INPUT (a folder's frames in name order,
numbers compared as numbers, so ``f2`` comes before ``f10``; one image; or a
video, through :mod:`blursynth.sources.clips`) and reads every frame's size
from its header, so a frame of another size or an unreadable file stops the
run before any output exists. :meth:`Footage.frames` then decodes the frames
in order. This is the source stage of :mod:`reference_models.apply`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from blursynth.errors import BlursynthError
from blursynth.sources.clips import FRAME_EXTS, VIDEO_EXTS, VideoReader, decode_frame
from blursynth.sources.clips import discover as discover_clips
from blursynth.sources.discovery import refuse_special
from blursynth.sources.headers import FRAME_PIXELS, check_pixels, raster_size

__all__ = ["Footage", "MEDIA", "open_footage"]

# What INPUT is: a folder of frames, one image, or a video file.
MEDIA = ("frames", "image", "video")
_DIGITS = re.compile(r"(\d+)")


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(name)]


@dataclass(frozen=True)
class Footage:
    """The frames to deblur.

    Attributes
    ----------
    path : Path
        The folder, image or video given as INPUT.
    medium : {"frames", "image", "video"}
        What INPUT is (:data:`MEDIA`).
    files : tuple of str
        Input file names, in order (one for an image or a video).
    stems : tuple of str
        One output stem per frame.
    size : (int, int)
        ``(W, H)`` of every frame.
    """

    path: Path
    medium: str
    files: tuple[str, ...]
    stems: tuple[str, ...]
    size: tuple[int, int]

    @property
    def n_frames(self) -> int:
        return len(self.stems)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, uint8 RGB ``[H, W, 3]``.

        Raises
        ------
        BlursynthError
            A frame that does not decode, or decodes to another size than its header said.
        """
        w, h = self.size
        if self.medium == "video":
            reader = VideoReader(str(self.path), self.path.name)
            try:
                for i in range(self.n_frames):
                    yield self._checked(reader.read(i), f"{self.path} frame {i}", w, h)
            finally:
                reader.close()
            return
        folder = self.path if self.medium == "frames" else self.path.parent
        for name in self.files:
            path = folder / name
            yield self._checked(decode_frame(path, str(self.path)), str(path), w, h)

    @staticmethod
    def _checked(bgr: np.ndarray, where: str, w: int, h: int) -> np.ndarray:
        if bgr.shape[:2] != (h, w):
            raise BlursynthError(f"{where}: frame size {bgr.shape[1]}x{bgr.shape[0]} differs from "
                                 f"the first frame's {w}x{h}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _image_size(path: Path, max_pixels: int) -> tuple[int, int]:
    """A frame's size from its header, refused (with the reason) before anything decodes it."""
    refuse_special(path, "INPUT")  # a FIFO named .png would hang the header read
    try:
        size = raster_size(path)
        check_pixels(size, max_pixels)
    except OSError as exc:
        raise BlursynthError(f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise BlursynthError(f"{path}: {exc}") from None
    return size


def open_footage(path: str | Path, max_pixels: int = FRAME_PIXELS) -> Footage:
    """Find and probe the frames of INPUT (headers only; no frame is decoded).

    Parameters
    ----------
    path : str or Path
        A folder of frames (``.png``, ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``;
        sub-folders are not read), one image, or a video (``.mp4``, ``.avi``,
        ``.mov``, ``.mkv``).
    max_pixels : int
        The most pixels a frame's header may declare (``--max-megapixels``;
        100 megapixels by default): a small file can declare a huge image,
        refused here before any pixel is decoded.

    Returns
    -------
    Footage

    Raises
    ------
    BlursynthError
        INPUT missing, empty or of another type (a FIFO, a socket, a device);
        an unreadable frame; a frame over ``max_pixels``; a frame of another
        size than the first; two frames that would write the same PNG.
    """
    path = Path(path)
    if not path.exists():
        raise BlursynthError(f"INPUT {path}: no such file or folder")
    exts = ", ".join(sorted(FRAME_EXTS))
    if path.is_dir():
        # Not is_file(): a FIFO named f3.png must be refused by _image_size, not skipped in silence.
        files = sorted((p.name for p in path.iterdir() if not p.is_dir() and p.suffix.lower() in FRAME_EXTS),
                       key=_natural_key)
        if not files:
            raise BlursynthError(f"INPUT {path}: no frames ({exts}) in this folder")
        stems: dict[str, str] = {}
        for name in files:
            stem = Path(name).stem
            if stem in stems:
                raise BlursynthError(f"INPUT {path}: {stems[stem]} and {name} would both write {stem}.png")
            stems[stem] = name
        size = None
        for name in files:
            this = _image_size(path / name, max_pixels)
            if size is None:
                size = this
            elif this != size:
                raise BlursynthError(f"{path / name}: frame size {this[0]}x{this[1]} differs from "
                                     f"{path / files[0]}'s {size[0]}x{size[1]}")
        return Footage(path, "frames", tuple(files), tuple(stems), size)
    suffix = path.suffix.lower()
    if suffix in FRAME_EXTS:
        return Footage(path, "image", (path.name,), (path.stem,), _image_size(path, max_pixels))
    if suffix in VIDEO_EXTS:
        clip = discover_clips([path], max_pixels=max_pixels)[0][0]
        return Footage(path, "video", (path.name,), tuple(f"frame_{i:06d}" for i in range(clip.n_frames)),
                       clip.size)
    raise BlursynthError(f"INPUT {path}: not a folder of frames, an image ({exts}) "
                         f"or a video ({', '.join(sorted(VIDEO_EXTS))})")
