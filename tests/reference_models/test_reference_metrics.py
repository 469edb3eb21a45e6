"""PSNR and SSIM against independent float64 computations written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from reference_models.metrics import PSNR, SSIM, gaussian_window, psnr, ssim


def ssim_oracle(x: np.ndarray, y: np.ndarray) -> float:
    """scikit-image's structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1), re-derived:
    scipy's Gaussian filter (truncate 3.5 -> 11 taps), reflect borders, 5-pixel crop,
    mean over pixels then channels. x, y: [H, W, C]."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    out = []
    for c in range(x.shape[-1]):
        a, b = x[..., c], y[..., c]
        f = lambda t: gaussian_filter(t, sigma=1.5, truncate=3.5)  # noqa: E731
        ma, mb = f(a), f(b)
        va, vb, cab = f(a * a) - ma ** 2, f(b * b) - mb ** 2, f(a * b) - ma * mb
        s = ((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
        out.append(s[5:-5, 5:-5].mean())
    return float(np.mean(out))


def _pair(seed, h=23, w=30, c=3):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (h, w, c)).astype(np.float64)
    noise = rng.normal(0, 20, (h, w, c))
    y = np.clip(gaussian_filter(x, (1, 1, 0)) + noise, 0, 255).round()
    return x, y


def _t(a):  # [H, W, C] -> [1, C, H, W]
    return torch.from_numpy(a).permute(2, 0, 1)[None]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_the_reference_definition(seed):
    x, y = _pair(seed)
    assert float(ssim(_t(x), _t(y))) == pytest.approx(ssim_oracle(x, y), abs=1e-10)


def test_ssim_grey_and_batch():
    x0, y0 = _pair(5, c=1)
    x1, y1 = _pair(6, c=1)
    got = ssim(torch.cat([_t(x0), _t(x1)]), torch.cat([_t(y0), _t(y1)]))
    assert got.shape == (2,)
    assert got.tolist() == pytest.approx([ssim_oracle(x0, y0), ssim_oracle(x1, y1)], abs=1e-10)


def test_ssim_hand_computed_cases():
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64) * 255
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-12)
    # Constant images: μ = a, b; σ = 0 -> (2ab + C1) / (a² + b² + C1).
    a, b = 100.0, 140.0
    c1 = (0.01 * 255) ** 2
    got = ssim(torch.full((1, 1, 12, 12), a), torch.full((1, 1, 12, 12), b))
    assert float(got) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-12)


def test_gaussian_window_is_cv2s():
    import cv2
    np.testing.assert_allclose(gaussian_window(11, 1.5).numpy(), cv2.getGaussianKernel(11, 1.5).ravel(),
                               rtol=1e-6)


def test_psnr():
    x, y = _pair(3)
    mse = np.mean((x - y) ** 2)
    assert float(psnr(_t(x), _t(y))) == pytest.approx(10 * np.log10(255 ** 2 / mse), rel=1e-12)
    assert float(psnr(torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 1.0), data_range=1.0)) == 0.0
    assert torch.isinf(psnr(_t(x), _t(x))).all()


def test_modules_are_batch_means():
    x = torch.rand(2, 3, 12, 12) * 255
    y = (x + torch.randn_like(x) * 5).clamp(0, 255)
    assert float(PSNR()(x, y)) == pytest.approx(float(psnr(x, y).mean()))
    assert float(SSIM()(x, y)) == pytest.approx(float(ssim(x, y).mean()))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 17))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 10, 16), torch.zeros(1, 3, 10, 16))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        psnr(torch.zeros(3, 16, 16), torch.zeros(3, 16, 16))
    with pytest.raises(ValueError, match="data_range"):
        psnr(torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4), data_range=0)
    with pytest.raises(TypeError, match="tensors"):
        psnr(np.zeros((1, 3, 4, 4)), torch.zeros(1, 3, 4, 4))
