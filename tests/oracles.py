"""Independent computations the tests compare the library with.

Written from the standards and papers, in float64, without calling blursynth.
"""

from __future__ import annotations

import numpy as np


def srgb_encode(x):
    """sRGB transfer function, IEC 61966-2-1: linear [0, 1] -> encoded [0, 1] (float64).

    ``12.92 x`` for ``x <= 0.0031308``, else ``1.055 x^(1/2.4) - 0.055``; input is
    clipped to [0, 1] first (as a camera saturates).
    """
    x = np.clip(np.asarray(x, dtype=np.float64), 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def srgb_decode(v):
    """Inverse sRGB transfer function, IEC 61966-2-1: encoded [0, 1] -> linear (float64).

    ``v / 12.92`` for ``v <= 0.04045``, else ``((v + 0.055) / 1.055)^2.4``.
    """
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode_8bit(x):
    """:func:`srgb_encode` to 8-bit codes, rounded to nearest (float64 values 0..255)."""
    return np.rint(255 * srgb_encode(x))


def srgb_decode_8bit(code):
    """:func:`srgb_decode` of 8-bit codes 0..255."""
    return srgb_decode(np.asarray(code, dtype=np.float64) / 255)
