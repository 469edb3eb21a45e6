"""One home for each twin (issue 21, item 3): the PSNR, the PNG writer and the seeded draw
across sources that blursynth and the reference models share, against oracles written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from blursynth.measures import psnr
from reference_models.metrics import psnr as torch_psnr


def oracle_psnr(a, b, peak):
    """10 log10(peak² / MSE) of one image, in plain Python floats."""
    a, b = np.asarray(a, np.float64).ravel().tolist(), np.asarray(b, np.float64).ravel().tolist()
    mse = sum((x - y) ** 2 for x, y in zip(a, b)) / len(a)
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


# ---------------------------------------------------------------------- PSNR
def test_psnr_per_image_and_whole_against_the_formula():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 6, 7, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 6, 7, 3), dtype=np.uint8)
    b[1] = a[1]  # an exact match: inf dB
    per_image = psnr(a, b, axis=(1, 2, 3))
    assert per_image.shape == (3,)
    assert per_image.tolist() == pytest.approx([oracle_psnr(a[i], b[i], 255) for i in range(3)], rel=1e-12)
    assert psnr(a, b) == pytest.approx(oracle_psnr(a, b, 255), rel=1e-12)
    assert psnr(a[1], b[1]) == math.inf
    assert psnr(a / 255.0, b / 255.0, data_range=1.0) == pytest.approx(oracle_psnr(a, b, 255), rel=1e-12)
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, b, data_range=0)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, b[:2])


def test_evaluation_psnr_is_the_report_psnr():
    """The reference models' metric ([B, C, H, W] tensors) gives the numbers of the report's
    blur strength (uint8 [H, W, 3] arrays) for the same images."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (2, 5, 9, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    nchw = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float()  # noqa: E731
    got = torch_psnr(nchw(a), nchw(b))
    assert got.dtype == torch.float64
    assert got.tolist() == pytest.approx([psnr(a[i], b[i]) for i in range(2)], rel=1e-12)
    assert got.tolist() == pytest.approx([oracle_psnr(a[i], b[i], 255) for i in range(2)], rel=1e-12)


# ----------------------------------------------------------------------- PNG
@pytest.mark.parametrize("level", [None, 0, 9])
def test_png_writer_stores_the_rgb_pixels(level):
    """Decoded by another library (Pillow, which reads PNG as RGB), the pixels come back
    exactly, channels in order, at every level; a higher level makes a smaller file."""
    import io

    from PIL import Image

    from blursynth.png import encode_png
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[..., 0] = np.arange(12) * 20  # red rises to the right, green downwards, blue constant
    rgb[..., 1] = np.arange(8)[:, None] * 30
    rgb[..., 2] = 77
    data = encode_png(rgb, level)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(decoded), rgb)
    if level == 9:
        noise = np.random.default_rng(0).integers(0, 4, (64, 64, 3), dtype=np.uint8)
        assert len(encode_png(noise, 9)) < len(encode_png(noise, 0))
