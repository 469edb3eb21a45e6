"""Image sizes read from file headers, without decoding the pixels.

Planning needs only the size of every panorama (to check 2:1 and to choose the
working width), so it reads a few hundred bytes per file instead of decoding it:

* Radiance RGBE (``.hdr``): the header lines up to the first blank line, then
  the resolution line (Ward, "Real Pixels", Graphics Gems II, and the Radiance
  file-format notes). Only the standard top-down orientation ``-Y H +X W`` and
  ``FORMAT=32-bit_rle_rgbe`` are accepted: they are what OpenCV, which decodes
  the pixels later, reads; a flipped or transposed orientation (``+Y``,
  ``-X``, ``+X W -Y H``, ...) and XYZE files are refused here with one line
  instead of failing at render time.
* PFM (``.pfm``): ``PF`` (RGB) or ``Pf`` (grey), then width, height and the
  scale (its sign gives the byte order), separated by white space. The file
  must also be long enough to hold ``W H C`` float32 values, so a truncated
  file is caught at plan time too.
* 8-bit ``.jpg``/``.png``: Pillow's header parser (``Image.open`` reads no
  pixels).

Every function returns ``(width, height)`` or raises :class:`ValueError` with a
short reason; the caller names the file.
"""

from __future__ import annotations

import os
from pathlib import Path

# A header longer than this is not one we can read (Radiance headers are a few
# lines; PFM headers are three short tokens).
MAX_HEADER = 64 * 1024


def radiance_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of a Radiance RGBE (``.hdr``) file from its header.

    Raises
    ------
    ValueError
        Not a Radiance file, no ``FORMAT=32-bit_rle_rgbe`` line, or a resolution
        line other than ``-Y H +X W``.
    """
    with open(path, "rb") as fh:
        first = fh.readline(MAX_HEADER)
        if not first.startswith(b"#?"):
            raise ValueError("not a Radiance .hdr file (no '#?' signature)")
        fmt = None
        read = len(first)
        while True:
            line = fh.readline(MAX_HEADER)
            read += len(line)
            if not line or read > MAX_HEADER:
                raise ValueError("truncated Radiance header (no blank line before the resolution)")
            text = line.strip()
            if not text:
                break
            if text.startswith(b"FORMAT="):
                fmt = text[len(b"FORMAT="):].decode("ascii", "replace")
        if fmt != "32-bit_rle_rgbe":
            raise ValueError(f"Radiance format {fmt or 'missing'!s} is not supported "
                             "(only FORMAT=32-bit_rle_rgbe)")
        resolution = fh.readline(256).decode("ascii", "replace").split()
    if len(resolution) != 4:
        raise ValueError("missing Radiance resolution line")
    if resolution[0] != "-Y" or resolution[2] != "+X":
        raise ValueError(f"Radiance orientation '{' '.join(resolution)}' is not supported "
                         "(only the standard top-down '-Y H +X W'; re-save the file)")
    try:
        height, width = int(resolution[1]), int(resolution[3])
    except ValueError:
        raise ValueError(f"bad Radiance resolution line '{' '.join(resolution)}'") from None
    if width < 1 or height < 1:
        raise ValueError(f"bad Radiance size {width}x{height}")
    return width, height


def pfm_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of a PFM file from its header; checks the file is long enough.

    Raises
    ------
    ValueError
        Not a PFM file, a malformed header, or fewer bytes than the header promises.
    """
    with open(path, "rb") as fh:
        head = fh.read(512)
    tokens, end, pos = [], 0, 0
    # Four white-space separated tokens: the type, W, H, scale; one white-space
    # byte then ends the header.
    while len(tokens) < 4:
        while pos < len(head) and head[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while pos < len(head) and not head[pos:pos + 1].isspace():
            pos += 1
        if pos >= len(head):
            raise ValueError("truncated PFM header")
        tokens.append(head[start:pos])
        end = pos + 1
    kind, w, h, scale = tokens
    if kind not in (b"PF", b"Pf"):
        raise ValueError("not a PFM file (no 'PF'/'Pf' signature)")
    try:
        width, height, scale = int(w), int(h), float(scale)
    except ValueError:
        raise ValueError("bad PFM header (width, height and scale must be numbers)") from None
    if width < 1 or height < 1 or scale == 0:
        raise ValueError(f"bad PFM header ({width}x{height}, scale {scale:g})")
    channels = 3 if kind == b"PF" else 1
    need = end + 4 * channels * width * height
    have = os.stat(path).st_size
    if have < need:
        raise ValueError(f"truncated PFM file ({have} bytes, the header promises {need})")
    return width, height


def raster_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an 8-bit image (JPEG, PNG) from its header (Pillow).

    Raises
    ------
    ValueError
        Pillow cannot identify the file.
    """
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        raise ValueError("not a readable image") from None
