"""Camera response curves: the one place where 8-bit values meet linear light.

Both pipelines average in linear light (Kim et al. 2017, Eq. 1; Argaw et al. 2021)
and re-encode to 8 bits. A :class:`Response` holds a curve ``f`` mapping linear
irradiance in [0, 1] to an encoded value in [0, 1] and its inverse, realized as
two look-up tables so that no per-pixel power is ever evaluated:

* ``linearize``: uint8 -> float32 through a 256-entry table (``cv2.LUT``).
* ``encode``: float32 -> uint8 as ``round(255 * f(scale * x))``. The table is
  indexed by ``q = round(65535 * sqrt(scale * x))`` (clamped to [0, 1]). Sampling
  in the square-root domain puts the table's resolution where encoding curves are
  steep (the shadows): for gamma 2.2 one index step moves the output by at most
  0.01 of a level, so the result equals the exact rounding except for values
  within ~0.005 level of a rounding boundary (the same order as float32 error).

Curves:

``linear``   f(x) = x (GoPro's ``blur``).
``gamma``    f(x) = x ** (1 / g), default g = 2.2 (GoPro's ``blur_gamma``).
``srgb``     the IEC 61966-2-1 transfer function.
``crf:FILE`` a measured curve. FILE (.txt/.csv/.npy) holds either 256 numbers,
             the linear irradiance of each code value 0..255 (an inverse CRF), or
             two columns ``irradiance, brightness`` sampling the forward curve
             (the DoRF layout). Values must be in [0, 1] and non-decreasing.

A comma list (``highspeed --response gamma,linear``) asks for several
renditions of the same exposures (:func:`parse_responses`): each curve's
``family`` (the part before ``:``) names its frame array, so two curves of one
family are refused.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
from numpy.lib import format as npy_format

from blursynth.errors import BlursynthError
from blursynth.infiles import read_input

ENCODE_TABLE_SIZE = 65536
# Rows shorter than this are padded before they reach OpenCV (see Response._index_flat).
_CV_MIN_ROW = 8
# Floats per band of rows in Response.average (about 25 rows of 720p RGB): the
# accumulator and its scratch band stay in L2 (measured best at 24-40 rows).
_BAND_FLOATS = 96 * 1024


def _srgb_forward(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _srgb_inverse(v: np.ndarray) -> np.ndarray:
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.04045, v / 12.92, np.power((v + 0.055) / 1.055, 2.4))


@dataclass(frozen=True, eq=False)
class Response:
    """A camera response curve with its two look-up tables.

    Parameters
    ----------
    name : str
        Canonical spelling, e.g. ``"gamma:2.2"``; recorded in configs.
    decode_table : ndarray, float32 [256]
        Linear irradiance of each code value.
    encode_table : ndarray, uint8 [65536]
        Code value for ``x = (q / 65535) ** 2``.
    forward, inverse : callable, optional
        The curve itself in float64, linear -> encoded and back (both in
        [0, 1]), for float images (:func:`blursynth.api.blur`).
    """

    name: str
    decode_table: np.ndarray
    encode_table: np.ndarray
    forward: Callable[[np.ndarray], np.ndarray] | None = None
    inverse: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def family(self) -> str:
        """The curve's family: ``linear``, ``gamma``, ``srgb`` or ``crf`` (names renditions)."""
        return self.name.partition(":")[0]

    def linearize(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """uint8 image -> float32 linear irradiance in [0, 1] (same shape).

        ``out`` (float32, same shape) is reused when given: a hot loop then
        allocates nothing per frame.
        """
        if image.dtype != np.uint8:
            raise TypeError(f"linearize expects uint8, got {image.dtype}")
        if out is not None:
            return cv2.LUT(image, self.decode_table, dst=out)
        return cv2.LUT(image, self.decode_table)

    def encode(self, linear: np.ndarray, scale: float = 1.0, channels: int | None = None) -> np.ndarray:
        """float32 linear image -> uint8, ``round(255 * f(scale * linear))``.

        ``scale`` folds a division (an average's 1/tau) or an exposure into the
        table index at no extra cost. Values above 1 saturate to 255; negative
        values and NaN give 0. ``channels`` encodes only the first channels of
        the last axis (RGB of the panorama renderer's RGB + luminance), reading
        the contiguous array as it is instead of copying the channels out (the
        result is then a view into a uint8 array of all the channels).
        """
        lin = np.asarray(linear, dtype=np.float32)
        if channels is not None and channels < lin.shape[-1] and lin.flags.c_contiguous:
            # every value is encoded on its own: encoding all channels and keeping
            # the first ones gives the same bytes as encoding those alone
            index = self._index_flat(lin.reshape(1, -1), scale).reshape(lin.shape)
            return np.take(self.encode_table, index)[..., :channels]
        if channels is not None:
            lin = lin[..., :channels]
        # cv2 works on 2-D arrays of up to 4 channels; flatten to one row.
        return self._encode_flat(lin.reshape(1, -1), scale).reshape(lin.shape)

    def average(self, frames: list[np.ndarray], linear_out: np.ndarray | None = None) -> np.ndarray | None:
        """Mean of uint8 frames in linear light: ``g(mean_j g^-1(X_j))`` (Kim et al. 2017, Eq. 1).

        Works through the frames in bands of rows, so the float32 accumulator of a
        band stays in the CPU cache across all frames instead of streaming a whole
        float frame through memory once per frame (about half the time at 720p).

        Parameters
        ----------
        frames : list of uint8 arrays [H, W, C], all the same shape.
        linear_out : float32 [H, W, C], optional
            If given, the linear mean is written there (for resampling before
            encoding) and None is returned; otherwise the encoded uint8 mean is returned.
        """
        first = frames[0]
        h = first.shape[0]
        flat = [f.reshape(h, -1) for f in frames]
        width = flat[0].shape[1]
        rows = max(1, min(h, _BAND_FLOATS // width))
        acc = np.empty((rows, width), np.float32)
        tmp = np.empty_like(acc)
        inv = 1.0 / len(frames)
        out = None if linear_out is not None else np.empty((h, width), np.uint8)
        for y in range(0, h, rows):
            band = slice(y, min(h, y + rows))
            a, t = acc[: band.stop - y], tmp[: band.stop - y]
            cv2.LUT(flat[0][band], self.decode_table, dst=a)
            for f in flat[1:]:
                cv2.add(a, cv2.LUT(f[band], self.decode_table, dst=t), dst=a)
            if out is None:
                np.multiply(a, np.float32(inv), out=linear_out.reshape(h, -1)[band])
            else:
                out[band] = self._encode_flat(a, inv)
        return None if out is None else out.reshape(first.shape)

    def _index_flat(self, lin: np.ndarray, scale: float) -> np.ndarray:
        """Indices into :attr:`encode_table` of a float32 ``[R, N]`` array.

        Negative values and NaN give index 0 and values above ``1 / scale``
        (+inf included) the last index, on every OpenCV version: the clamp is
        numpy's ``fmax``/``fmin``, which return the number when one operand is
        NaN. OpenCV promises nothing for NaN (``cv2.multiply`` saturated it to 0
        up to 4.x and to 65535 in 5.1), so only finite values reach it.
        """
        n = lin.shape[1]
        if n < _CV_MIN_ROW:
            # OpenCV reads an array of up to 4 numbers as a Scalar; pad the row.
            lin = np.concatenate([lin, np.zeros((lin.shape[0], _CV_MIN_ROW - n), np.float32)], axis=1)
        clamped = np.fmax(lin, np.float32(0.0))
        np.fmin(clamped, np.float32(1.0 / scale), out=clamped)
        root = cv2.sqrt(clamped)
        # cv2.multiply with an integer dtype rounds (half to even) and saturates.
        index = cv2.multiply(root, float((ENCODE_TABLE_SIZE - 1) * np.sqrt(scale)), dtype=cv2.CV_16U)
        return index[:, :n] if n < _CV_MIN_ROW else index

    def _encode_flat(self, lin: np.ndarray, scale: float) -> np.ndarray:
        # np.take of a contiguous index array is about twice as fast as indexing
        return np.take(self.encode_table, self._index_flat(lin, scale))

    def __reduce__(self):  # pickle by name: tables rebuild in the worker
        return (parse_response, (self.name,))


def _build(name: str, forward, inverse) -> Response:
    codes = np.arange(256, dtype=np.float64) / 255.0
    decode = inverse(codes).astype(np.float32)
    q = np.arange(ENCODE_TABLE_SIZE, dtype=np.float64) / (ENCODE_TABLE_SIZE - 1)
    encode = np.clip(np.rint(255.0 * forward(q * q)), 0, 255).astype(np.uint8)
    return Response(name, decode, encode, forward, inverse)


def _read_npy(data: bytes) -> np.ndarray:
    """An array from ``.npy`` bytes, its header checked against the bytes there are first
    (a header may declare any shape; numpy would allocate it before reading)."""
    fh = io.BytesIO(data)
    version = npy_format.read_magic(fh)
    read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    shape, _, dtype = read_header(fh)
    if dtype.hasobject:
        raise ValueError("the array holds Python objects")
    if math.prod(shape) * dtype.itemsize > len(data) - fh.tell():
        raise ValueError(f"the header declares a {shape} array, more than the file holds")
    fh.seek(0)
    return np.load(fh, allow_pickle=False)


def _load_crf(path: Path):
    name = f"--response crf:{path}"
    data = read_input(path, "response curve", name=name)  # a regular file within the cap
    try:
        if path.suffix.lower() == ".npy":
            table = _read_npy(data)
        else:
            text = io.StringIO(data.decode("utf-8"))
            table = np.loadtxt(text, delimiter="," if path.suffix.lower() == ".csv" else None)
    except (OSError, ValueError) as exc:  # ValueError: bad UTF-8, not numbers, a bad .npy header
        raise BlursynthError(f"{name}: cannot read the curve ({exc})") from None
    table = np.asarray(table)
    if table.dtype.kind not in "iuf":  # strings, complex numbers, booleans, objects
        raise BlursynthError(f"--response crf:{path}: holds {table.dtype} values; a curve is real numbers")
    table = table.astype(np.float64)
    if table.ndim == 1 and table.size == 256:
        codes = np.arange(256) / 255.0
        irradiance, brightness = table, codes
    elif table.ndim == 2 and 2 in table.shape and table.size >= 4:
        if table.shape[1] != 2:
            table = table.T
        irradiance, brightness = table[:, 0], table[:, 1]
    else:
        raise BlursynthError(
            f"--response crf:{path}: expected 256 values (inverse CRF) or two columns "
            f"(irradiance, brightness), got an array of shape {table.shape}"
        )
    if not (np.all(np.isfinite(table)) and irradiance.min() >= 0 and irradiance.max() <= 1
            and brightness.min() >= 0 and brightness.max() <= 1):
        raise BlursynthError(f"--response crf:{path}: values must be finite and in [0, 1]")
    if np.any(np.diff(irradiance) < 0) or np.any(np.diff(brightness) < 0):
        raise BlursynthError(f"--response crf:{path}: the curve must be non-decreasing")
    if irradiance[0] > 0 or irradiance[-1] < 1:
        raise BlursynthError(f"--response crf:{path}: irradiance must span 0 to 1")

    def forward(x):
        return np.interp(np.clip(x, 0, 1), irradiance, brightness)

    def inverse(v):
        # Where the curve is flat the inverse is ambiguous; take the lowest irradiance.
        return np.interp(v, brightness, irradiance)

    return forward, inverse


@functools.lru_cache(maxsize=32)
def _parse_cached(name: str, digest: str | None) -> Response:
    family, _, arg = name.partition(":")
    if family == "linear":
        return _build(name, lambda x: np.clip(x, 0, 1), lambda v: np.asarray(v, np.float64))
    if family == "srgb":
        return _build(name, _srgb_forward, _srgb_inverse)
    if family == "gamma":
        g = float(arg)
        return _build(name, lambda x: np.power(np.clip(x, 0, 1), 1.0 / g), lambda v: np.power(v, g))
    if family == "crf":
        forward, inverse = _load_crf(Path(arg))
        return _build(name, forward, inverse)
    raise AssertionError(name)


def parse_response(spec: str, gamma: float = 2.2) -> Response:
    """Build a :class:`Response` from ``--response`` / ``--gamma``.

    ``spec`` is ``linear``, ``srgb``, ``gamma`` (uses ``gamma``), ``gamma:G`` or
    ``crf:FILE``. Raises :class:`BlursynthError` naming the option on bad input.
    """
    family, sep, arg = spec.partition(":")
    if "," in spec and family != "crf":
        raise BlursynthError(f"--response {spec}: a list of curves is accepted by highspeed only; "
                             "give one of linear, srgb, gamma, gamma:G, crf:FILE")
    if family in ("linear", "srgb") and not sep:
        return _parse_cached(family, None)
    if family == "gamma":
        try:
            g = float(arg) if sep else float(gamma)
        except ValueError:
            raise BlursynthError(f"--response {spec}: gamma must be a number") from None
        if not (0.1 <= g <= 10):
            raise BlursynthError(f"--gamma {g}: must be between 0.1 and 10")
        return _parse_cached(f"gamma:{g:g}", None)
    if family == "crf" and arg:
        path = Path(arg)
        # Refused by type and size before it is opened: a FIFO hung here, /dev/zero filled memory.
        data = read_input(path, "response curve", name=f"--response crf:{arg}")
        # absolute: a Dask worker reads the table again in its own working folder
        return _parse_cached(f"crf:{path.absolute()}", hashlib.sha256(data).hexdigest())
    raise BlursynthError(
        f"--response {spec}: expected one of linear, srgb, gamma, gamma:G, crf:FILE"
    )


def parse_responses(spec: str, gamma: float = 2.2) -> tuple[Response, ...]:
    """Build the renditions of ``--response`` given as a comma list (``gamma,linear``).

    The first curve makes the ``blur`` array, each further one ``blur_<family>``
    (see :attr:`Response.family`); a single curve gives a tuple of one. Curves
    are separated by commas, so a ``crf:FILE`` path in a list must not hold one.

    Raises
    ------
    BlursynthError
        Naming ``--response``: an empty entry, an unknown curve, or two curves
        of one family (they would need the same array name).
    """
    parts = [part.strip() for part in spec.split(",")]
    if len(parts) == 1:
        return (parse_response(spec, gamma),)
    if not all(parts):
        raise BlursynthError(f"--response {spec}: an empty entry in the list; e.g. --response gamma,linear")
    responses, families = [], {}
    for part in parts:
        response = parse_response(part, gamma)
        if response.family in families:
            raise BlursynthError(f"--response {spec}: {families[response.family]} and {part} are both "
                                 f"{response.family} curves; each rendition needs its own kind (it names the array "
                                 f"blur_{response.family})")
        families[response.family] = part
        responses.append(response)
    return tuple(responses)
