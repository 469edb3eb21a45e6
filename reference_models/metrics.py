"""Image quality metrics: PSNR and SSIM on the 0–255 scale.

PSNR is blursynth's one PSNR (:func:`blursynth.curate.measures.psnr`, numpy, no torch),
applied per image of a batch.

SSIM follows the standard definition (Wang et al. 2004) as scikit-image's
``structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255, channel_axis=-1)`` and BasicSR
compute it: an 11-tap Gaussian window with σ = 1.5, constants
C1 = (0.01·255)², C2 = (0.03·255)², statistics without the sample-covariance
correction, the SSIM map averaged over the pixels whose window lies inside the
image (scikit-image filters the whole image and crops 5 pixels off each border;
that is the same set of values), and the mean over the colour channels.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

import blursynth.curate.measures as measures

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def _check_pair(x: torch.Tensor, y: torch.Tensor, min_size: int = 1) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"x and y must be tensors, got {type(x).__name__} and {type(y).__name__}")
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.ndim != 4:
        raise ValueError(f"x must be [B, C, H, W], got {x.ndim} dimensions {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(f"x is {x.shape[-2]}x{x.shape[-1]} pixels; SSIM needs at least "
                         f"{min_size}x{min_size} (the window size)")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0) -> torch.Tensor:
    r"""Peak signal-to-noise ratio of each image in a batch.

    .. math:: \mathrm{PSNR}(x, y) = 10 \log_{10} \frac{R^2}{\operatorname{mean}((x - y)^2)}

    Parameters
    ----------
    x : torch.Tensor
        Images, [B, C, H, W].
    y : torch.Tensor
        Reference images, same shape.
    data_range : float
        R, the value range (255 for 8-bit images).

    Returns
    -------
    torch.Tensor
        [B] PSNR in dB, computed in float64 on the CPU by blursynth's one PSNR
        (:func:`blursynth.curate.measures.psnr`), on ``x``'s device; ``inf`` for
        identical images. An evaluation metric: no gradient flows through it.

    Examples
    --------
    >>> x = torch.zeros(1, 3, 4, 4); y = torch.full_like(x, 255.0)
    >>> float(psnr(x, y))
    0.0
    """
    _check_pair(x, y)
    db = measures.psnr(x.detach().double().cpu().numpy(), y.detach().double().cpu().numpy(), data_range,
                       axis=(1, 2, 3))
    return torch.from_numpy(db).to(x.device)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA,
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The normalized 1-D Gaussian ``exp(-k²/2σ²)``, k = -(size//2)…size//2 (as ``cv2.getGaussianKernel``)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd number, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    k = torch.arange(size, dtype=dtype) - size // 2
    w = torch.exp(-(k ** 2) / (2 * sigma ** 2))
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 255.0,
         window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    r"""Structural similarity of each image in a batch, averaged over pixels and channels.

    .. math::
        \mathrm{SSIM}(x, y) = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
                                   {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)}

    with μ, σ² and σ_xy weighted by a ``window``-tap Gaussian of std ``sigma``,
    C1 = (0.01 R)², C2 = (0.03 R)², over the "valid" pixels (those whose window
    lies inside the image). Computed in float64.

    Parameters
    ----------
    x : torch.Tensor
        Images, [B, C, H, W], values in [0, R].
    y : torch.Tensor
        Reference images, same shape.
    data_range : float
        R (255 for 8-bit images).
    window : int
        Window size (odd).
    sigma : float
        Gaussian standard deviation.

    Returns
    -------
    torch.Tensor
        [B] mean SSIM.

    Examples
    --------
    >>> x = torch.rand(2, 3, 16, 16) * 255
    >>> ssim(x, x)
    tensor([1., 1.], dtype=torch.float64)
    """
    _check_pair(x, y, min_size=window)
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    x = x.double()
    y = y.double()
    channels = x.shape[1]
    g = gaussian_window(window, sigma, dtype=x.dtype).to(x.device)
    gh = g.view(1, 1, 1, window).expand(channels, 1, 1, window)
    gv = g.view(1, 1, window, 1).expand(channels, 1, window, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gh, groups=channels), gv, groups=channels)

    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(1)


def to_uint8_range(x: torch.Tensor) -> torch.Tensor:
    """A 0–1 image as the 8-bit image it would be saved as: round(255·x) clipped to 0–255."""
    return (x.detach().double() * 255.0).round().clamp(0.0, 255.0)


class PSNR(nn.Module):
    """Module form of :func:`psnr`; returns the batch mean."""

    def __init__(self, data_range: float = 255.0):
        super().__init__()
        self.data_range = data_range

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return psnr(x, y, self.data_range).mean()


class SSIM(nn.Module):
    """Module form of :func:`ssim`; returns the batch mean."""

    def __init__(self, data_range: float = 255.0, window: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA):
        super().__init__()
        self.data_range = data_range
        self.window = window
        self.sigma = sigma

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ssim(x, y, self.data_range, self.window, self.sigma).mean()
