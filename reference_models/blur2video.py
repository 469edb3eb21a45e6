"""Blur2Video: the video frames hidden in one motion-blurred image.

Argaw, Kim, Rameau, Zhang, Kweon, "Restoration of Video Frames from a Single
Blurred Image with Motion Understanding", CVPR Workshops 2021 (Sec. 4–5).
No public code exists for the paper; everything here is written from its text,
and every size the text does not give is a choice listed in :class:`Blur2Video`
and in docs/models.md.

The network maps one blurred image B [B, 3, H, W] to the K latent frames of its
exposure [B, K, 3, H, W] (K odd; the middle frame is index K // 2):

* one encoder (five levels E_1..E_5, Sec. 4);
* a middle-frame decoder (Sec. 4.1), which alone is a single-image deblurrer
  (``frames=1``: pair datasets);
* for every other frame i, a feature transformer (FTN: a global STN and a local
  per-pixel warp of E_l, Eq. 1), an image transformer (ITN: an STN applied to
  the middle decoder's image at that scale) and a decoder D_i fed with both and
  with E_l (Eq. 2).

Losses (Sec. 4.3) are pure functions: :func:`photometric_loss` (Eq. 3),
:func:`transformation_consistency_loss` (Eq. 4), :func:`penalty_loss` (Eq. 5)
and :func:`combined_loss` (Eq. 6). :class:`Blur2VideoTask` ties model, data,
loss, schedule (Sec. 5) and the order rule of the evaluation together.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from blursynth.errors import BlursynthError
from reference_models.data import LatentDataset, PairDataset, SampleRef, ShardIndex, to_float
from reference_models.layers import DenseBlock
from reference_models.metrics import psnr
from reference_models.registry import register_model
from reference_models.task import ModelTask, core_model

__all__ = [
    "Blur2Video", "Blur2VideoTask", "STN", "LocalWarp", "warp", "affine_displacement",
    "pyramid", "photometric_loss", "transformation_consistency_loss", "penalty_loss", "combined_loss",
    "better_order", "LOSS_SWITCHES", "blur2video", "blur2video_ftn_stn", "blur2video_ftn_stn_lw",
    "blur2video_ftn_stn_itn",
]

LEVELS = 5                      # encoder levels E_1..E_5 (Sec. 4)
LOSS_SWITCHES = ("pml", "pml+tcl", "pml+tcl+pt")   # the loss ablation (Table 4)


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


# ----------------------------------------------------------------------- model
class Blur2Video(nn.Module):
    r"""Video frames from one motion-blurred image (Argaw et al. 2021, Sec. 4).

    ::

        E_1..E_5        = Encoder(B)                                   level l at ⌈H/2^l⌉, E_0 := B
        M^4..M^0, M     = D_m(E_5; skips E_4..E_1, B)                   Sec. 4.1, M^l at level l
        for each frame i ≠ middle, level l = 0..4:
          F_i^l         = concat(STN_i^l(E_l), LW_i^l(E_l))            FTN, Eq. 1
          T_i^l         = STN'_i^l(M^l)  (θ regressed from concat(E_l, M^l))   ITN
          Î_i^4..Î_i^0, Î_i = D_i(E_5; skips concat(F_i^l, T_i^l, E_l))  Eq. 2

    Choices the paper's text does not fix, made here (also in docs/models.md):

    * **levels and skips**: five encoder levels, each conv3×3 stride 2 (padding 1,
      so odd sizes give ⌈h/2⌉) then conv3×3 stride 1; decoder block j works at
      level 5 − j, so its five images are at 1/16, 1/8, 1/4, 1/2 and 1 of the
      input size; the full-resolution block's skip is the blurred image itself
      (E_0 := B), which the FTN also transforms — five transformed levels per
      frame, the five that Eq. 4 compares;
    * **kernel sizes**: 3×3 convolutions, 4×4 stride-2 deconvolutions (exact 2×
      upsampling, cropped to the skip's size for odd sizes), 1×1 fusion after
      the five dense convolutions;
    * **widths**: encoder ``widths`` = (32, 48, 64, 96, 128) for E_1..E_5;
      decoder features ``decoder_widths`` = (16, 32, 48, 64, 96) at levels
      0..4, dense growth rate a quarter of the width; chosen so that the full
      model trains on the CPU at small sizes (``width_mult`` scales them all);
    * **activation**: LeakyReLU(0.2), no normalization;
    * **images**: each scale's image is the blurred input at that scale plus a
      conv3×3 of the block's feature, and that conv starts at 0.1× its default
      initialization, so an untrained model outputs (nearly) the blurred image for
      every frame — the baseline it must beat — instead of noise;
    * **refining block**: three conv3×3 (16 channels) on
      concat(full-scale image, last feature), added to the image;
    * **STN**: an affine transform (6 parameters, relative to the identity, in
      normalized coordinates), regressed by two stride-2 convs, a global average
      and a linear layer that starts near 0; the ITN's STN regresses θ from
      concat(E_l, M^l) (the middle image alone does not show the motion), the
      FTN's from E_l;
    * **flow range**: LW's flow is tanh-bounded to ±``max_flow`` = 0.2 in
      normalized units (±10 % of the level's width and height);
    * **warping**: bilinear, border-clamped, on pixel coordinates (:func:`warp`).

    Parameters
    ----------
    frames : int or None
        K, latent frames predicted (odd; 1 = the middle-frame network alone, a
        single-image deblurrer). ``None``: 3 until the training data says
        otherwise (:meth:`Blur2VideoTask.dataset` sets K from the dataset).
    local_warp : bool
        FTN includes LW (FTN[STN+LW]); otherwise STN only.
    image_transformer : bool
        Use the ITN.
    width_mult : float
        Multiply every channel count (rounded, at least 4).
    max_flow : float
        LW flow bound (normalized units).
    loss : str
        Which terms of Eq. 6: ``"pml"``, ``"pml+tcl"`` or ``"pml+tcl+pt"``.
    lambda_tc, lambda_p : float
        λ_tc and λ_p of Eq. 6.
    level_weights : sequence of float
        Eq. 3's weights for [refined, level 0, …, level 4].

    Notes
    -----
    ``forward(B)``: [B, 3, H, W] → [B, K, 3, H, W]; with ``details=True`` a dict
    ``{"pyramid": list of [B, K, 3, h_s, w_s] for s = refined, level 0..4,
    "theta": [B, K − 1, 5, 6] FTN transforms (None for K = 1),
    "theta_itn": [B, K − 1, 5, 6] or None}``.

    Examples
    --------
    >>> model = Blur2Video(frames=3, width_mult=0.25)
    >>> model(torch.rand(2, 3, 33, 40)).shape
    torch.Size([2, 3, 3, 33, 40])
    """

    sample_kind = "latent"

    def __init__(self, frames: int | None = None, local_warp: bool = True, image_transformer: bool = True,
                 width_mult: float = 1.0, max_flow: float = 0.2, loss: str = "pml+tcl+pt",
                 lambda_tc: float = 0.1, lambda_p: float = 0.1,
                 level_weights: Sequence[float] = (1.0, 1.0, 0.5, 0.25, 0.125, 0.0625)):
        super().__init__()
        if frames is not None and (not isinstance(frames, int) or frames < 1 or frames % 2 == 0):
            raise ValueError(f"frames must be a positive odd number (the middle frame is predicted), got {frames}")
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if loss not in LOSS_SWITCHES:
            raise ValueError(f"loss must be one of {', '.join(LOSS_SWITCHES)}, got {loss!r}")
        if lambda_tc < 0 or lambda_p < 0:
            raise ValueError(f"lambda_tc and lambda_p must be >= 0, got {lambda_tc}, {lambda_p}")
        if len(level_weights) != LEVELS + 1 or any(w < 0 for w in level_weights):
            raise ValueError(f"level_weights must be {LEVELS + 1} non-negative numbers "
                             f"(refined, level 0..4), got {level_weights}")
        self.local_warp = local_warp
        self.image_transformer = image_transformer
        self.max_flow = max_flow
        self.loss_terms = loss
        self.lambda_tc = lambda_tc
        self.lambda_p = lambda_p
        self.level_weights = tuple(float(w) for w in level_weights)
        # K comes from the dataset unless given: the task may set it once, before training.
        self.frames_fixed = frames is not None

        def scale(c: int) -> int:
            return max(4, int(round(c * width_mult)))

        self.widths = [scale(c) for c in (32, 48, 64, 96, 128)]            # E_1..E_5
        self.decoder_widths = [scale(c) for c in (16, 32, 48, 64, 96)]    # levels 0..4
        self.growths = [max(4, c // 4) for c in self.decoder_widths]
        self.refine_width = scale(16)
        self.skip_widths = [3, *self.widths[:-1]]                           # E_0 := B, E_1..E_4
        self.encoder = Encoder(self.widths)
        self.middle = self._decoder(self.skip_widths)
        self.frames = 1
        self.branches = nn.ModuleList()
        self.set_frames(3 if frames is None else frames)

    def _decoder(self, skips: Sequence[int]) -> Decoder:
        return Decoder(self.widths[-1], skips, self.decoder_widths, self.growths, self.refine_width)

    def _branch(self) -> nn.Module:
        """FTN, ITN and decoder D_i of one non-middle frame."""
        branch = nn.Module()
        branch.stn = nn.ModuleList(STN(c) for c in self.skip_widths)
        if self.local_warp:
            branch.lw = nn.ModuleList(LocalWarp(c, max_flow=self.max_flow) for c in self.skip_widths)
        if self.image_transformer:
            branch.itn = nn.ModuleList(STN(c + 3) for c in self.skip_widths)
        ftn = 2 if self.local_warp else 1
        skips = [c * ftn + (3 if self.image_transformer else 0) + c for c in self.skip_widths]
        branch.decoder = self._decoder(skips)
        return branch

    def set_frames(self, frames: int) -> None:
        """(Re)build the non-middle branches for K = ``frames`` (fresh weights for them)."""
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be a positive odd number, got {frames}")
        self.frames = frames
        ref = next(self.encoder.parameters())
        self.branches = nn.ModuleList(self._branch() for _ in range(frames - 1)).to(ref.device, ref.dtype)

    @property
    def middle_index(self) -> int:
        return self.frames // 2

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load weights, first building as many frame branches as ``state_dict`` holds (K is in the weights)."""
        ids = {int(k.split(".")[1]) for k in state_dict if k.startswith("branches.")}
        frames = len(ids) + 1
        if frames != self.frames:
            self.set_frames(frames)
        self.frames_fixed = True
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _branch_forward(self, branch: nn.Module, feats: list[torch.Tensor], bottleneck: torch.Tensor,
                        middle: dict[int, torch.Tensor], base: list[torch.Tensor]):
        thetas, itn_thetas = {}, {}

        def skip(l: int, _images) -> torch.Tensor:
            e = feats[l]
            warped, thetas[l] = branch.stn[l](e)
            parts = [warped]
            if self.local_warp:
                parts.append(branch.lw[l](e))
            if self.image_transformer:
                image, itn_thetas[l] = branch.itn[l](middle[l], torch.cat([e, middle[l]], 1))
                parts.append(image)
            parts.append(e)
            return torch.cat(parts, 1)

        images = branch.decoder(bottleneck, skip, base)
        theta = torch.stack([thetas[l] for l in range(LEVELS)], 1)
        itn = torch.stack([itn_thetas[l] for l in range(LEVELS)], 1) if self.image_transformer else None
        return images, theta, itn

    def forward(self, blur: torch.Tensor, details: bool = False):
        """B [B, 3, H, W] in [0, 1] → the K frames [B, K, 3, H, W] (not clipped); see the class doc."""
        if blur.ndim != 4 or blur.shape[1] != 3:
            raise ValueError(f"blur must be [B, 3, H, W], got {tuple(blur.shape)}")
        base = pyramid(blur)                       # B at every level: the images' starting point
        enc = self.encoder(blur)
        feats = [blur, *enc[:-1]]                  # skips E_0 := B, E_1..E_4
        bottleneck = enc[-1]
        middle = self.middle(bottleneck, lambda l, _images: feats[l], base)
        # middle[1 + l] is M^l, the middle image at level l (middle[0] the refined one).
        middle_at = {l: middle[1 + l] for l in range(LEVELS)}
        per_frame: list[list[torch.Tensor] | None] = [None] * self.frames
        per_frame[self.middle_index] = middle
        thetas, itns = [], []
        others = [i for i in range(self.frames) if i != self.middle_index]
        for i, branch in zip(others, self.branches):
            per_frame[i], theta, itn = self._branch_forward(branch, feats, bottleneck, middle_at, base)
            thetas.append(theta)
            itns.append(itn)
        levels = [torch.stack([frame[s] for frame in per_frame], 1) for s in range(LEVELS + 1)]
        if not details:
            return levels[0]
        return {"pyramid": levels,
                "theta": torch.stack(thetas, 1) if thetas else None,
                "theta_itn": torch.stack(itns, 1) if itns and self.image_transformer else None}


# ---------------------------------------------------------------------- losses
def photometric_loss(pred: Sequence[torch.Tensor], target: torch.Tensor,
                     weights: Sequence[float]) -> torch.Tensor:
    r"""Multi-scale photometric loss (Eq. 3): Σ_s w_s · mean |Î^s − I^s|.

    Parameters
    ----------
    pred : sequence of torch.Tensor
        Images per scale, ``pred[0]`` the refined full-scale output, then
        levels 0..4 ([..., 3, h_s, w_s], level l at ⌈H/2^l⌉).
    target : torch.Tensor
        The ground truth at full scale [..., 3, H, W]; level l of it is its
        l-th bilinear halving (:func:`pyramid`).
    weights : sequence of float
        w_s for each entry of ``pred``.

    Returns
    -------
    torch.Tensor
        fp32 scalar.

    Notes
    -----
    The norm is L1 (mean absolute error per pixel and channel). With L1 for both
    this term and the penalty (Eq. 5), and λ_p below the full-scale weight, the
    true frame stays the per-pixel minimum of the combined loss.
    """
    if len(pred) != len(weights):
        raise ValueError(f"{len(pred)} scales but {len(weights)} weights")
    levels = pyramid(target, len(pred) - 1)
    targets = [target, *levels]
    loss = target.new_zeros((), dtype=torch.float32)
    for p, t, w in zip(pred, targets, weights):
        if p.shape != t.shape:
            raise ValueError(f"prediction {tuple(p.shape)} does not match the target at its scale {tuple(t.shape)}")
        if w:
            loss = loss + w * (p.float() - t.float()).abs().mean()
    return loss


def transformation_consistency_loss(theta: torch.Tensor) -> torch.Tensor:
    r"""Transformation consistency (Eq. 4): mean |θ_i^{l+1} − θ_i^l| over frames, adjacent levels, parameters.

    The STN of frame i regresses a transform at every level; in normalized
    coordinates one global motion is the same transform at every scale, so the
    levels' estimates should agree. L1 over the 6 parameters, averaged over the
    batch, the frames, the 4 pairs of adjacent levels and the parameters.

    Parameters
    ----------
    theta : torch.Tensor
        [B, F, L, 6] (F transformed frames, L levels).

    Returns
    -------
    torch.Tensor
        fp32 scalar.
    """
    if theta.ndim != 4 or theta.shape[2] < 2:
        raise ValueError(f"theta must be [B, F, L >= 2, P], got {tuple(theta.shape)}")
    return (theta[:, :, 1:] - theta[:, :, :-1]).float().abs().mean()


def penalty_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Penalty (Eq. 5): the negative SAD between each predicted frame and its time-symmetric ground truth.

    −mean over the non-middle frames i of mean |Î_i − I_{K−1−i}| (0-based
    positions; the middle frame is its own mirror and is left out). Minimizing
    it pushes frame i away from the frame at the mirrored time, which breaks
    the tie between the sequence and its reverse that an average cannot tell
    apart. The SAD is averaged per pixel so that the term is in [−1, 0].

    Parameters
    ----------
    pred, target : torch.Tensor
        [B, K, 3, H, W].

    Returns
    -------
    torch.Tensor
        fp32 scalar (0 for K = 1).
    """
    if pred.shape != target.shape or pred.ndim != 5:
        raise ValueError(f"pred and target must be the same [B, K, 3, H, W], got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    k = pred.shape[1]
    others = [i for i in range(k) if i != k // 2]
    if not others:
        return pred.new_zeros((), dtype=torch.float32)
    mirrored = target.flip(1)
    return -(pred[:, others].float() - mirrored[:, others].float()).abs().mean()


def combined_loss(pml: torch.Tensor, tcl: torch.Tensor | None, pt: torch.Tensor | None, terms: str,
                  lambda_tc: float, lambda_p: float) -> torch.Tensor:
    r"""Eq. 6: L = L_pm + λ_tc L_tc + λ_p L_p, with the terms switched by ``terms``.

    ``terms`` is one of :data:`LOSS_SWITCHES`: ``"pml"`` (L_pm only),
    ``"pml+tcl"``, ``"pml+tcl+pt"`` (the full loss), as in the loss ablation.
    A term that does not exist (``None``, e.g. no transforms for K = 1) counts 0.
    """
    if terms not in LOSS_SWITCHES:
        raise ValueError(f"terms must be one of {', '.join(LOSS_SWITCHES)}, got {terms!r}")
    loss = pml
    if "tcl" in terms and tcl is not None:
        loss = loss + lambda_tc * tcl
    if "pt" in terms and pt is not None:
        loss = loss + lambda_p * pt
    return loss


# ------------------------------------------------------------------ evaluation
def better_order(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The order rule of the evaluation: per sequence, ``output`` or ``output`` reversed, whichever is better.

    A blurred image is the same for a motion and its reverse, so the paper scores
    each predicted sequence in ground-truth order and in reverse order and keeps
    the better one. "Better" is the higher mean PSNR over the sequence's frames
    (each frame clipped to [0, 1]); a tie keeps the ground-truth order.

    Parameters
    ----------
    output, target : torch.Tensor
        [B, N, 3, H, W].

    Returns
    -------
    torch.Tensor
        [B, N, 3, H, W]: each sample's frames in the order that scores better.
    """
    if output.shape != target.shape or output.ndim != 5:
        raise ValueError(f"output and target must be the same [B, N, 3, H, W], got {tuple(output.shape)} "
                         f"and {tuple(target.shape)}")
    truth = target.clamp(0, 1).flatten(0, 1)

    def score(frames: torch.Tensor) -> torch.Tensor:
        """Mean PSNR over each sequence's frames; an exact match counts 200 dB, so means stay finite."""
        db = psnr(frames.clamp(0, 1).flatten(0, 1), truth, data_range=1.0).clamp(max=200.0)
        return db.view(output.shape[:2]).mean(1)

    forward = score(output)
    backward = score(output.flip(1))
    reverse = (backward > forward).view(-1, 1, 1, 1, 1)
    return torch.where(reverse, output.flip(1), output)


# ------------------------------------------------------------------------ task
# Sec. 5: 80 epochs, learning rate halved after epochs 40 and 60.
EPOCHS = 80
LR_MILESTONES = (40, 60)

class Blur2VideoTask(ModelTask):
    """Training and scoring of Blur2Video (Argaw et al. 2021, Sec. 4.3 and 5).

    * **Data**: one blurred frame with its K latent frames (:class:`LatentDataset`),
      or with its sharp frame for pair data (:class:`PairDataset`, K = 1). K is
      the dataset's: a model built without ``frames`` is set to it here, before
      training; a model with K fixed (given, or loaded from weights) must match
      it, except that a pair dataset is scored on the model's middle frame and a
      middle-only model (``frames=1``) on the dataset's middle latent frame.
    * **Loss** (Eq. 6): :func:`combined_loss` of :func:`photometric_loss`
      (Eq. 3, over the refined output and the five levels),
      :func:`transformation_consistency_loss` (Eq. 4, FTN and ITN transforms,
      summed) and :func:`penalty_loss` (Eq. 5, on the refined output); the
      model's ``loss`` argument switches terms off for the loss ablation.
    * **Schedule** (Sec. 5): Adam (0.9, 0.999); the learning rate is multiplied
      by ``lr_decay`` = 0.5 after epochs 40 and 60 (steps_per_epoch from the
      training set's size); the paper trains 80 epochs = 80 · steps_per_epoch
      steps. Initial lr 1e-4 and crop 256×256 are our choices (not in the text).
      Batch 8 as for the panorama data; the paper's high-speed setting uses
      batch 4 (``recipes/argaw2021_gopro7_train.toml``).
    * **Evaluation**: each sequence in ground-truth order or reversed, whichever
      scores better (:func:`better_order`), per position (``initial``,
      ``middle``, ``final``; ``t1``… in between for K > 3).
    """

    sample_kind = "latent"
    defaults = {"batch": 8, "patch": 256, "lr": 1e-4, "lr_decay": 0.5, "weight_reg": 0.0}
    # Measured on 2 CPU cores (docs/models.md, "Presets").
    probe = {"model_args": {"frames": 1, "width_mult": 0.5}, "steps": 3000,
             "batch": 4, "patch": 48, "lr": 3e-4, "lr_schedule": "cosine", "ema": 0.995}

    def dataset(self, index: ShardIndex, refs: Sequence[SampleRef] | None, *, model: nn.Module,
                clip_len: int | None, patch: int | None, augment: bool, flip: bool, seed: int):
        core = core_model(model)
        k = index.n_latent or 1
        if k % 2 == 0:
            raise BlursynthError(f"{index.root}: the samples have {k} latent frames; blur2video predicts "
                                 "a middle frame and pairs around it, so it needs an odd number "
                                 "(make the dataset with --latent 3 or 7)")
        if not core.frames_fixed:
            if k != core.frames:
                core.set_frames(k)
            core.frames_fixed = True
        elif k != core.frames and k != 1 and core.frames != 1:
            raise BlursynthError(f"{index.root}: the samples have {k} latent frames but this blur2video "
                                 f"model predicts {core.frames} (train it on this dataset, or pass "
                                 f"--model-arg frames={k} when training)")
        common = dict(patch=patch, augment=augment, flip=flip, seed=seed)
        return LatentDataset(index, refs, **common) if index.n_latent else PairDataset(index, refs, **common)

    @staticmethod
    def _target(frames: int, batch: dict) -> torch.Tensor:
        """[B, N, 3, H, W]: the latent frames (their middle one for a middle-only model) or the sharp frame."""
        if "latent" in batch:
            latent = to_float(batch["latent"])
            if frames == 1 and latent.shape[1] > 1:
                mid = latent.shape[1] // 2
                return latent[:, mid:mid + 1]
            return latent
        return to_float(batch["sharp"]).unsqueeze(1)

    @staticmethod
    def _match(pred: torch.Tensor, n: int) -> torch.Tensor:
        """The model's middle frame when the target has one position and the model several."""
        if pred.shape[1] == n:
            return pred
        mid = pred.shape[1] // 2
        return pred[:, mid:mid + 1]

    def loss(self, model, batch, config):
        core = core_model(model)
        blur = to_float(batch["blur"])
        target = self._target(core.frames, batch)
        out = model(blur, details=True)
        pred = [self._match(p, target.shape[1]) for p in out["pyramid"]]
        pml = photometric_loss(pred, target, core.level_weights)
        tcl = None
        if out["theta"] is not None:
            tcl = transformation_consistency_loss(out["theta"])
            if out["theta_itn"] is not None:
                tcl = tcl + transformation_consistency_loss(out["theta_itn"])
        pt = penalty_loss(pred[0], target) if target.shape[1] > 1 else None
        loss = combined_loss(pml, tcl, pt, core.loss_terms, core.lambda_tc, core.lambda_p)
        terms = {"pml": float(pml.detach())}
        if tcl is not None:
            terms["tcl"] = float(tcl.detach())
        if pt is not None:
            terms["pt"] = float(pt.detach())
        return loss, terms

    def learning_rate(self, config, step: int, steps_per_epoch: int) -> float:
        passed = sum(step >= m * steps_per_epoch for m in LR_MILESTONES)
        return config.lr * config.lr_decay ** passed

    def outputs(self, model, batch):
        core = core_model(model)
        blur = to_float(batch["blur"])
        target = self._target(core.frames, batch)
        out = self._match(model(blur), target.shape[1])
        return out, target, blur.unsqueeze(1).expand_as(target)

    def align(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return better_order(output, target) if output.shape[1] > 1 else output

    def position_names(self, n: int) -> list[str]:
        if n == 1:
            return ["middle"]
        names = [f"t{i}" for i in range(n)]
        names[0], names[-1] = "initial", "final"
        if n % 2:
            names[n // 2] = "middle"
        return names


Blur2Video.task = Blur2VideoTask()


# ------------------------------------------------------------------- registry
def _create(variant: dict, **kwargs) -> Blur2Video:
    clash = set(variant) & set(kwargs)
    if clash:
        raise ValueError(f"{', '.join(sorted(clash))} is fixed by this variant (use blur2video to set it)")
    return Blur2Video(**variant, **kwargs)


@register_model
def blur2video(**kwargs) -> Blur2Video:
    """Blur2Video, full model (Argaw et al. 2021): FTN[STN+LW] + ITN."""
    return Blur2Video(**kwargs)


@register_model
def blur2video_ftn_stn(**kwargs) -> Blur2Video:
    """Blur2Video ablation FTN[STN]: global feature transform only (Table 5)."""
    return _create(dict(local_warp=False, image_transformer=False), **kwargs)


@register_model
def blur2video_ftn_stn_lw(**kwargs) -> Blur2Video:
    """Blur2Video ablation FTN[STN+LW]: global and local feature transforms, no ITN (Table 5)."""
    return _create(dict(local_warp=True, image_transformer=False), **kwargs)


@register_model
def blur2video_ftn_stn_itn(**kwargs) -> Blur2Video:
    """Blur2Video ablation FTN[STN]+ITN: global feature transform and the image transformer (Table 5)."""
    return _create(dict(local_warp=False, image_transformer=True), **kwargs)
