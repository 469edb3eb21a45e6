"""PNG encoding: the one PNG writer of blursynth's frames.

``export`` (every layout's frames), ``deblur`` (:mod:`reference_models.apply`)
and the thumbnails of ``report``'s page encode with :func:`encode_png`; the
bytes go to disk through :mod:`blursynth.atomic`. Contact sheets and the
report's plots are matplotlib figures and are saved by matplotlib.
"""

from __future__ import annotations

import cv2
import numpy as np


def encode_png(rgb: np.ndarray, level: int | None = None) -> bytes:
    """PNG bytes of an RGB uint8 image (PNG stores RGB; OpenCV's encoder takes BGR).

    Parameters
    ----------
    rgb : ndarray
        uint8 ``[H, W, 3]``, RGB.
    level : int, optional
        zlib level 0-9 (``cv2.IMWRITE_PNG_COMPRESSION``, as ``export --png-level``).
        ``None``: OpenCV's default, which is level 1 tuned for speed (the
        ``SUB`` filter and the RLE strategy), so its bytes differ from those of
        ``level=1`` while the pixels are the same.

    Returns
    -------
    bytes
        The PNG file.
    """
    params = [] if level is None else [cv2.IMWRITE_PNG_COMPRESSION, level]
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 HxWx3 array
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
