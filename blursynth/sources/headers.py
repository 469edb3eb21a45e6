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
* 8-bit ``.jpg``/``.png``/``.tif``: the JPEG start-of-frame segment (ITU
  T.81), the PNG IHDR chunk or the TIFF's first image file directory; other
  files named so fall back to Pillow's header parser.
* OpenEXR (``.exr``): the ``dataWindow`` attribute of the header.

Every size is checked against a pixel limit (:func:`check_pixels`) before any
pixel is decoded, in synthesis and in ``deblur`` (issue 19, item 5).

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
    magic, w, h, scale = tokens
    if magic not in (b"PF", b"Pf"):
        raise ValueError("not a PFM file (no 'PF'/'Pf' signature)")
    try:
        width, height, scale = int(w), int(h), float(scale)
    except ValueError:
        raise ValueError("bad PFM header (width, height and scale must be numbers)") from None
    if width < 1 or height < 1 or scale == 0:
        raise ValueError(f"bad PFM header ({width}x{height}, scale {scale:g})")
    channels = 3 if magic == b"PF" else 1
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


def tiff_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of a TIFF from its first image file directory (TIFF 6.0, section 2).

    The header gives the byte order (``II``/``MM``), 42 and the offset of the
    first IFD; the IFD's ImageWidth (256) and ImageLength (257) entries hold
    the size, as SHORT or LONG values in the entry itself.

    Raises
    ------
    ValueError
        Not a classic TIFF (BigTIFF included), or no width and height in the first IFD.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8 or head[:2] not in (b"II", b"MM"):
            raise ValueError("not a TIFF file")
        order = "little" if head[:2] == b"II" else "big"
        if int.from_bytes(head[2:4], order) != 42:
            raise ValueError("not a classic TIFF file")
        fh.seek(int.from_bytes(head[4:8], order))
        count = int.from_bytes(fh.read(2), order)
        entries = fh.read(12 * min(count, 4096))
    size = {}
    for k in range(len(entries) // 12):
        entry = entries[12 * k:12 * k + 12]
        tag, field_type = int.from_bytes(entry[0:2], order), int.from_bytes(entry[2:4], order)
        if tag in (256, 257) and field_type in (3, 4):  # SHORT: the first 2 bytes of the value field
            size[tag] = int.from_bytes(entry[8:10] if field_type == 3 else entry[8:12], order)
    if 256 not in size or 257 not in size or min(size.values()) < 1:
        raise ValueError("no TIFF image size in the first directory")
    return size[256], size[257]


def exr_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an OpenEXR file from its header's ``dataWindow`` (OpenEXR file layout).

    After the magic number and the version field come attributes, each a
    null-terminated name, a null-terminated type, a 4-byte size and the
    value; ``dataWindow`` is a ``box2i`` (xMin, yMin, xMax, yMax as int32).

    Raises
    ------
    ValueError
        Not an OpenEXR file, or no ``dataWindow`` in the first ``MAX_HEADER`` bytes.
    """
    with open(path, "rb") as fh:
        head = fh.read(MAX_HEADER)
    if head[:4] != b"\x76\x2f\x31\x01":
        raise ValueError("not an OpenEXR file")
    pos = 8
    while pos < len(head):
        name_end = head.find(b"\0", pos)
        if name_end == pos:  # an empty name ends the header
            break
        type_end = head.find(b"\0", name_end + 1)
        if name_end < 0 or type_end < 0 or type_end + 5 > len(head):
            break
        length = int.from_bytes(head[type_end + 1:type_end + 5], "little")
        value = head[type_end + 5:type_end + 5 + length]
        if head[pos:name_end] == b"dataWindow" and len(value) == 16:
            x0, y0, x1, y1 = (int.from_bytes(value[i:i + 4], "little", signed=True) for i in range(0, 16, 4))
            if x1 < x0 or y1 < y0:
                raise ValueError(f"bad OpenEXR data window {x0},{y0} to {x1},{y1}")
            return x1 - x0 + 1, y1 - y0 + 1
        pos = type_end + 5 + length
    raise ValueError("no OpenEXR dataWindow in the header")


# The most pixels an image may declare before anything decodes it (issue 19,
# item 5): a 389 KB PNG may declare 20000x20000 pixels, 1.2 GB of RGB, more as
# float. Raised with --max-megapixels.
FRAME_PIXELS = 100_000_000
PANORAMA_PIXELS = 400_000_000


def check_pixels(size: tuple[int, int], limit: int) -> None:
    """Refuse an image whose header declares more than ``limit`` pixels.

    Parameters
    ----------
    size : (int, int)
        ``(width, height)`` from the header.
    limit : int
        The most pixels allowed (:data:`FRAME_PIXELS`, :data:`PANORAMA_PIXELS`,
        or what ``--max-megapixels`` says).

    Raises
    ------
    ValueError
        With the reason, for the caller to name the file.
    """
    w, h = size
    if w * h > limit:
        raise ValueError(f"declares {w}x{h} pixels ({w * h / 1e6:.3g} megapixels), more than the limit of "
                         f"{limit / 1e6:g}; raise it with --max-megapixels if the image is real")


def raster_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of an 8-bit image (JPEG, PNG, TIFF) from its header.

    JPEG, PNG and TIFF headers are parsed here (:func:`jpeg_size`,
    :func:`png_size`, :func:`tiff_size`: a few hundred bytes, no library in
    the loop); anything else, e.g. a BMP renamed ``.jpg``, falls back to
    Pillow's header parser (``Image.open`` reads no pixels). Pillow's own
    decompression-bomb limit is not applied there: the caller checks the size
    against blursynth's (:func:`check_pixels`), which an option can raise.

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
        if magic[:4] in (b"II*\0", b"MM\0*"):
            return tiff_size(path)
    except ValueError:
        pass  # let Pillow judge a damaged header
    import warnings

    from PIL import Image, UnidentifiedImageError
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                return im.size
    except Image.DecompressionBombError:
        raise ValueError(f"declares more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        raise ValueError("not a readable image") from None
