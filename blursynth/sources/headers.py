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
* 8-bit ``.jpg``/``.png``: the JPEG start-of-frame segment (ITU T.81) or the
  PNG IHDR chunk; other files named so fall back to Pillow's header parser.

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


# JPEG start-of-frame markers (baseline, extended, progressive, lossless, ...):
# every 0xC0-0xCF except DHT (C4), JPG (C8) and DAC (CC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def jpeg_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of a JPEG from its start-of-frame segment (ITU T.81, B.2.2).

    Walks the marker segments from SOI to the first SOF marker, whose payload
    holds the sample precision, then the height and width (16-bit big-endian).

    Raises
    ------
    ValueError
        No SOI signature, or no SOF segment in the first ``MAX_HEADER`` bytes
        (segments such as EXIF thumbnails are skipped by their length).
    """
    with open(path, "rb") as fh:
        if fh.read(2) != b"\xff\xd8":
            raise ValueError("not a JPEG file")
        while True:
            byte = fh.read(1)
            while byte == b"\xff":  # fill bytes before a marker
                marker = fh.read(1)
                if marker != b"\xff":
                    break
            else:
                raise ValueError("bad JPEG marker")
            if not marker:
                raise ValueError("truncated JPEG header")
            code = marker[0]
            if code == 0x01 or 0xD0 <= code <= 0xD7:  # TEM, RSTn: no length
                continue
            length = fh.read(2)
            if len(length) < 2:
                raise ValueError("truncated JPEG header")
            size = int.from_bytes(length, "big")
            if code in _SOF:
                frame = fh.read(5)
                if len(frame) < 5:
                    raise ValueError("truncated JPEG header")
                height, width = int.from_bytes(frame[1:3], "big"), int.from_bytes(frame[3:5], "big")
                if width < 1 or height < 1:
                    raise ValueError(f"bad JPEG size {width}x{height}")
                return width, height
            if code == 0xDA or size < 2:  # start of scan before any frame header
                raise ValueError("no JPEG frame header")
            fh.seek(size - 2, 1)
            if fh.tell() > 16 * 1024 * 1024:
                raise ValueError("no JPEG frame header in the first 16 MiB")


def png_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of a PNG from its IHDR chunk, the first one (PNG spec, 11.2.2).

    Raises
    ------
    ValueError
        No PNG signature or no IHDR chunk first.
    """
    with open(path, "rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if width < 1 or height < 1:
        raise ValueError(f"bad PNG size {width}x{height}")
    return width, height


def raster_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an 8-bit image (JPEG, PNG) from its header.

    JPEG and PNG headers are parsed here (:func:`jpeg_size`, :func:`png_size`:
    a few hundred bytes, no library in the loop); anything else, e.g. a PNG
    renamed ``.jpg``, falls back to Pillow's header parser (``Image.open`` reads
    no pixels).

    Raises
    ------
    ValueError
        The file is not an image Pillow can identify.
    """
    with open(path, "rb") as fh:
        magic = fh.read(8)
    try:
        if magic[:2] == b"\xff\xd8":
            return jpeg_size(path)
        if magic == b"\x89PNG\r\n\x1a\n":
            return png_size(path)
    except ValueError:
        pass  # let Pillow judge a damaged header
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        raise ValueError("not a readable image") from None
