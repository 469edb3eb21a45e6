"""The panorama a renderer samples: linear light, resampled, padded, cached per process.

:func:`load_panorama` reads a checked panorama (:mod:`blursynth.sources.panoramas`),
linearizes an 8-bit one through the response curve, area-averages it in linear
light to the working width, adds the luminance channel and pads it for seamless
lookups (:func:`blursynth.panorama.geometry.pad_equirect`). A small per-process
cache keyed by path, modification time and size lets a worker decode a panorama
once for all the samples it renders from it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import cv2
import numpy as np

import blursynth.panorama.geometry as geometry
from blursynth.errors import BadSourceError
from blursynth.response import parse_response
from blursynth.sources.panoramas import LUMA, image_size, jpeg_reduction, read_image

__all__ = ["linear_rgbl", "load_panorama"]


# RGB -> RGB + luminance in one pass (cv2.transform).
_RGB_TO_RGBL = np.vstack([np.eye(3), [LUMA]]).astype(np.float32)


def linear_rgbl(image: np.ndarray, dynamic_range: str, response_name: str, width: int) -> np.ndarray:
    """Linear float32 ``[width / 2, width, 4]``: RGB plus luminance.

    8-bit images are linearized through the response curve first; then the
    image is area-averaged in linear light (``cv2.INTER_AREA``) to ``width``
    when it is wider. Exposure needs the luminance, and ``cv2.remap`` is
    faster on 4 float channels than on 3.
    """
    linear = parse_response(response_name).linearize(image) if dynamic_range == "ldr" else image
    if linear.shape[1] != width or linear.shape[0] != width // 2:
        linear = cv2.resize(linear, (width, width // 2), interpolation=cv2.INTER_AREA)
    return cv2.transform(linear, _RGB_TO_RGBL)


def _reduction(path: str, dynamic_range: str, width: int, source_id: str) -> int:
    """libjpeg scale-down for a JPEG panorama much wider than ``width`` (1 otherwise)."""
    if dynamic_range != "ldr" or Path(path).suffix.lower() not in (".jpg", ".jpeg"):
        return 1
    return jpeg_reduction(image_size(path, source_id)[0], width)


@functools.lru_cache(maxsize=4)
def _padded(path: str, stamp: tuple[int, int], source_id: str, dynamic_range: str, response_name: str,
            width: int) -> np.ndarray:
    image = read_image(path, dynamic_range, source_id, _reduction(path, dynamic_range, width, source_id))
    padded = geometry.pad_equirect(linear_rgbl(image, dynamic_range, response_name, width), geometry.PAD,
                                   geometry.seam_pad(width))
    padded.setflags(write=False)
    return padded


def load_panorama(path: str | Path, dynamic_range: str, response_name: str, width: int,
                  source_id: str | None = None) -> np.ndarray:
    """The linear panorama ready to sample: float32 ``[H + 2, W + 2 pad_x, 4]`` (RGB, luminance).

    A JPEG at least three times as wide as ``width`` is decoded at 1/2 or 1/4
    of its size (:func:`jpeg_reduction`). Resampled to ``width`` (see
    :func:`blursynth.panorama.plan.working_width`) and padded by
    :func:`blursynth.panorama.geometry.pad_equirect` (one row at each pole and
    ``pad_x = W / 4`` wrapped columns at each side of the seam,
    :func:`blursynth.panorama.geometry.seam_pad`). Kept in a small per-process cache
    keyed by path, modification time and size, so a worker decodes a panorama
    once for all the samples it renders from it.

    Parameters
    ----------
    path : str or Path
        The panorama file.
    dynamic_range : {"ldr", "hdr"}
        How to decode it.
    response_name : str
        The response curve that takes 8-bit files to linear light.
    width : int
        Width to resample to (area averaging, in linear light).
    source_id : str, optional
        The id named in errors (default: the file name).

    Returns
    -------
    ndarray
        Read-only; shared by every caller in this process.
    """
    path = str(path)
    source_id = source_id or Path(path).name
    try:
        st = os.stat(path)
    except OSError as exc:
        raise BadSourceError(source_id, f"{path}: cannot read ({exc.strerror})") from None
    return _padded(path, (st.st_mtime_ns, st.st_size), source_id, dynamic_range, response_name, int(width))
