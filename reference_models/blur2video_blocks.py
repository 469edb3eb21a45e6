"""Blur2Video's building blocks: warps, spatial transformers, encoder, decoder, image pyramid.

Argaw, Kim, Rameau, Zhang, Kweon, "Restoration of Video Frames from a Single
Blurred Image with Motion Understanding", CVPR Workshops 2021 (Sec. 4). The
network that assembles them, and the choices the text leaves open, are in
:mod:`reference_models.blur2video`; the losses in
:mod:`reference_models.blur2video_losses`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_models.layers import DenseBlock

__all__ = ["LEVELS", "warp", "affine_displacement", "STN", "LocalWarp", "Encoder", "Decoder", "pyramid"]

LEVELS = 5                      # encoder levels E_1..E_5 (Sec. 4)


# --------------------------------------------------------------------- warping
def warp(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor) -> torch.Tensor:
    r"""Bilinear backward warp: out[b, :, y, x] = x[b, :, y + dy[b, y, x], x + dx[b, y, x]].

    Positions outside the image are clamped to its border. The sampling is
    written with ``gather`` on pixel coordinates rather than ``grid_sample`` so
    that a zero displacement returns the input exactly (``grid_sample``'s
    normalized coordinates round, and mix neighbours by ~1e-7).

    Parameters
    ----------
    x : torch.Tensor
        [B, C, H, W].
    dx, dy : torch.Tensor
        Displacements in pixels, [B, H, W].

    Returns
    -------
    torch.Tensor
        [B, C, H, W], differentiable in ``x``, ``dx`` and ``dy``.

    Examples
    --------
    >>> x = torch.rand(1, 2, 5, 6)
    >>> torch.equal(warp(x, torch.zeros(1, 5, 6), torch.zeros(1, 5, 6)), x)
    True
    """
    if x.ndim != 4:
        raise ValueError(f"x must be [B, C, H, W], got {tuple(x.shape)}")
    b, c, h, w = x.shape
    if dx.shape != (b, h, w) or dy.shape != (b, h, w):
        raise ValueError(f"dx and dy must be [{b}, {h}, {w}], got {tuple(dx.shape)} and {tuple(dy.shape)}")
    # Positions in float32 even under bf16 autocast (bf16 cannot tell pixel 1001 from 1002).
    dx, dy = dx.float(), dy.float()
    ys = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
    px = (xs + dx).clamp(0, w - 1)
    py = (ys + dy).clamp(0, h - 1)
    x0f, y0f = px.detach().floor(), py.detach().floor()
    wx, wy = (px - x0f).to(x.dtype), (py - y0f).to(x.dtype)
    x0, y0 = x0f.long(), y0f.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = x.reshape(b, c, h * w)

    def tap(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        index = (yi * w + xi).view(b, 1, h * w).expand(b, c, h * w)
        return flat.gather(2, index).view(b, c, h, w)

    wx, wy = wx.unsqueeze(1), wy.unsqueeze(1)
    top = tap(y0, x0) * (1 - wx) + tap(y0, x1) * wx
    bottom = tap(y1, x0) * (1 - wx) + tap(y1, x1) * wx
    return top * (1 - wy) + bottom * wy


def affine_displacement(theta: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Pixel displacements of the affine transform ``theta`` on an h×w grid.

    ``theta`` [B, 6] holds (a11 − 1, a12, t_x, a21, a22 − 1, t_y): the sample for
    the pixel at normalized position (u, v) ∈ [−1, 1]² (−1 and 1 are the centres
    of the border pixels) is taken at A (u, v) + t. Because ``theta`` is stored
    relative to the identity, the displacement A (u, v) + t − (u, v) is computed
    without the round trip through normalized coordinates, and ``theta = 0``
    gives a displacement of exactly 0. In normalized coordinates the same
    ``theta`` means the same motion at every level of the pyramid (what Eq. 4
    compares).

    Parameters
    ----------
    theta : torch.Tensor
        [B, 6].
    h, w : int
        Grid size.

    Returns
    -------
    dx, dy : torch.Tensor
        [B, h, w] in pixels.
    """
    if theta.ndim != 2 or theta.shape[1] != 6:
        raise ValueError(f"theta must be [B, 6], got {tuple(theta.shape)}")
    sx, sy = max(w - 1, 1) / 2.0, max(h - 1, 1) / 2.0
    u = (torch.arange(w, device=theta.device, dtype=theta.dtype) / sx - 1.0).view(1, 1, w)
    v = (torch.arange(h, device=theta.device, dtype=theta.dtype) / sy - 1.0).view(1, h, 1)
    t = theta.view(-1, 6, 1, 1)
    du = t[:, 0] * u + t[:, 1] * v + t[:, 2]
    dv = t[:, 3] * u + t[:, 4] * v + t[:, 5]
    return du * sx, dv * sy


# ---------------------------------------------------------------------- blocks
def _act() -> nn.Module:
    return nn.LeakyReLU(0.2, inplace=False)


class STN(nn.Module):
    """Spatial transformer (Jaderberg et al. 2015): regress one affine transform, warp with it.

    Localization: conv3×3 stride 2 → LeakyReLU → conv3×3 stride 2 → LeakyReLU →
    global average → linear to the 6 parameters of :func:`affine_displacement`.
    The linear layer starts with weights ×0.01 and bias 0, so an untrained STN is
    (nearly) the identity and still passes a gradient to its convolutions.

    ``forward(x, source=None)`` regresses θ from ``source`` (default ``x``) and
    returns ``(warped x, θ)``.
    """

    def __init__(self, in_channels: int, hidden: int = 32):
        super().__init__()
        self.localize = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1), _act(),
            nn.Conv2d(hidden, hidden, 3, stride=2, padding=1), _act())
        self.theta = nn.Linear(hidden, 6)
        with torch.no_grad():
            self.theta.weight.mul_(0.01)
            self.theta.bias.zero_()

    def forward(self, x: torch.Tensor, source: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.localize(x if source is None else source)
        theta = self.theta(feat.mean((2, 3)))
        dx, dy = affine_displacement(theta.float(), x.shape[-2], x.shape[-1])
        return warp(x, dx, dy), theta


class LocalWarp(nn.Module):
    """Local warping (LW of Eq. 1): a per-pixel flow regressed from the feature, warping it.

    flow = ``max_flow`` · tanh(conv3×3 → LeakyReLU → conv3×3), in units of half
    the level's size (the normalized coordinates of :func:`affine_displacement`),
    so ``max_flow = 0.2`` bounds the displacement to 10 % of the width and height
    at every level. The last conv starts at ×0.01 its default initialization.
    """

    def __init__(self, in_channels: int, hidden: int = 32, max_flow: float = 0.2):
        super().__init__()
        if max_flow <= 0:
            raise ValueError(f"max_flow must be positive, got {max_flow}")
        self.max_flow = max_flow
        self.flow = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), _act(),
                                  nn.Conv2d(hidden, 2, 3, padding=1))
        with torch.no_grad():
            self.flow[-1].weight.mul_(0.01)
            self.flow[-1].bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        flow = self.max_flow * torch.tanh(self.flow(x).float())
        return warp(x, flow[:, 0] * (max(w - 1, 1) / 2.0), flow[:, 1] * (max(h - 1, 1) / 2.0))


def _small(conv: nn.Module, scale: float = 0.1) -> nn.Module:
    with torch.no_grad():
        conv.weight.mul_(scale)
        conv.bias.zero_()
    return conv


class Encoder(nn.Module):
    """Five levels; level l: conv3×3 stride 2 → LeakyReLU → conv3×3 → LeakyReLU, giving E_l at ⌈H/2^l⌉."""

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        chans = [3, *widths]
        self.levels = nn.ModuleList(
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1), _act(),
                          nn.Conv2d(chans[i + 1], chans[i + 1], 3, padding=1), _act())
            for i in range(len(widths)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    """Five blocks from E_5 up to full resolution, an image at each scale, then a refining block.

    Block j (j = 1..5) works at level l = 5 − j (level 0 is full resolution):
    deconv4×4 stride 2 of the previous feature (E_5 for j = 1) and of the
    previous image (none for j = 1), each cropped to the level's size,
    concatenated with the skip input of the level, five densely connected convs
    (:class:`DenseBlock`), and an image: the blurred input at that scale plus
    conv3×3(feature). The refining block takes the full-scale image and the last
    feature map: image + conv3×3(LeakyReLU(conv3×3(LeakyReLU(conv3×3(concat))))).

    ``skip_channels[l]`` is the width of the skip input at level l (the middle
    decoder's skips are E_1..E_4 and the blurred image itself at level 0; a
    non-middle decoder's skips are concat(FTN(E_l), ITN(M^l), E_l), Eq. 2).
    """

    def __init__(self, bottleneck: int, skip_channels: Sequence[int], widths: Sequence[int],
                 growths: Sequence[int], refine: int):
        super().__init__()
        n = len(widths)
        self.up_feature = nn.ModuleList()
        self.up_image = nn.ModuleList()
        self.dense = nn.ModuleList()
        self.to_image = nn.ModuleList()
        prev = bottleneck
        for l in reversed(range(n)):
            self.up_feature.append(nn.ConvTranspose2d(prev, widths[l], 4, stride=2, padding=1))
            has_image = l < n - 1
            self.up_image.append(nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1) if has_image else nn.Identity())
            cin = widths[l] + skip_channels[l] + (3 if has_image else 0)
            self.dense.append(DenseBlock(cin, growths[l], widths[l], layers=5, act=_act()))
            self.to_image.append(_small(nn.Conv2d(widths[l], 3, 3, padding=1)))
            prev = widths[l]
        self.refine = nn.Sequential(nn.Conv2d(3 + widths[0], refine, 3, padding=1), _act(),
                                    nn.Conv2d(refine, refine, 3, padding=1), _act(),
                                    _small(nn.Conv2d(refine, 3, 3, padding=1)))
        self.act = _act()

    def forward(self, bottleneck: torch.Tensor, skip, base: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Run the blocks; ``skip(l, images_so_far)`` returns the skip input of level l.

        Returns the images [refined full scale, level 0, level 1, …, level 4].
        """
        n = len(self.dense)
        feat, image = bottleneck, None
        images: dict[int, torch.Tensor] = {}
        for j, l in enumerate(reversed(range(n))):
            h, w = base[l].shape[-2:]
            parts = [self.act(self.up_feature[j](feat))[..., :h, :w], skip(l, images)]
            if image is not None:
                parts.append(self.up_image[j](image)[..., :h, :w])
            feat = self.dense[j](torch.cat(parts, 1))
            image = base[l] + self.to_image[j](feat)
            images[l] = image
        refined = image + self.refine(torch.cat([image, feat], 1))
        return [refined] + [images[l] for l in range(n)]


def pyramid(x: torch.Tensor, levels: int = LEVELS) -> list[torch.Tensor]:
    """``levels`` scales of ``x`` [..., H, W]: x, then successive bilinear halvings to ⌈h/2⌉×⌈w/2⌉.

    A halving of an even size with bilinear interpolation (align_corners=False)
    is the mean of each 2×2 block; the sizes match the encoder's stride-2 levels.
    This is how Eq. 3's ground truth and each decoder's base image are downsampled.
    """
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:])
    out = [x]
    for _ in range(levels - 1):
        h, w = x.shape[-2:]
        x = F.interpolate(x, size=((h + 1) // 2, (w + 1) // 2), mode="bilinear", align_corners=False)
        out.append(x)
    return [t.reshape(*lead, *t.shape[-3:]) for t in out]
