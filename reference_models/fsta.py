"""FSTA: video deblurring with factorized spatio-temporal attention.

M. Suin and A. N. Rajagopalan, "Dynamic Scene Video Deblurring using Non-Local
Attention" (arXiv 2201.00169), refined as "Gated Spatio-Temporal
Attention-Guided Video Deblurring", CVPR 2021. No source code was released;
this file implements the factorized spatio-temporal attention (FSTA) of
Eqs. 1–6 batched and with channels, a hierarchical encoder–decoder of densely
connected modules around it, and the choices the paper leaves open (listed in
:class:`FSTANet` and in docs/models.md). The CVPR version's reinforcement
learning frame selection and gating are not implemented: the T frames around
the current one are always used.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from blursynth.errors import BlursynthError
from reference_models.data import to_float
from reference_models.layers import DenseBlock
from reference_models.registry import register_model
from reference_models.task import ModelTask, score_frames

__all__ = ["FSTA", "FSTANet", "FSTATask", "fsta"]


class FSTA(nn.Module):
    r"""Factorized spatio-temporal attention (Suin & Rajagopalan, Eqs. 1–6), batched, with channels.

    For the features x of T consecutive frames (T odd) and the current frame
    R = the centre one, with C channels, M spatial and N temporal maps:

    * Eq. 1, spatial attention: A_s = softmax_{HW}(f_s(x_t)) for every frame t,
      f_s a 3×3 conv C → M (shared by the frames): M maps per frame, each
      summing to 1 over the H·W positions.
    * Eq. 2, spatial aggregation: G_s[t, m, c] = Σ_{hw} A_s[t, m, hw] · x_t[c, hw],
      one value per frame, map and channel.
    * Eq. 3, temporal attention: x' = x averaged over space, [T, C];
      A_t = softmax_T(f_t(x')), f_t a 1-D conv over T (C → N channels, kernel 3,
      zero padding): N maps, each summing to 1 over the T frames.
    * Eq. 4, temporal aggregation: G_st = G_s A_tᵀ, per channel the M×T matrix
      G_s times the T×N matrix A_tᵀ: M·N spatio-temporal values per channel.
    * Eq. 5, pixelwise distribution: A_p = softmax_{MN}(f_p(x^R)), f_p a 3×3
      conv C → M·N on the current frame only: at every pixel, weights summing
      to 1 over the M·N values.
    * Eq. 6: y^R[c, hw] = Σ_k G_st[c, k] · A_p[k, hw].

    **How y^R joins x^R** (not stated in the paper): z^R = x^R + W_z y^R with
    W_z a 1×1 conv, the join of the non-local block (Wang et al. 2018) that the
    paper compares against, so that the two blocks differ only in the attention.
    W_z keeps PyTorch's default initialization (not zero): a zero W_z would
    leave f_s, f_t and f_p without a gradient at the first step.

    :meth:`forward` slides the T-frame window over a longer clip: Eqs. 1–2 run
    once per frame and are shared by the windows that contain the frame; only
    Eqs. 3–6 run per window. A clip of exactly T frames is one window.

    Parameters
    ----------
    channels : int
        C.
    frames : int
        T, frames per window (odd; the current frame is the centre).
    spatial_maps : int
        M.
    temporal_maps : int
        N.
    temporal_kernel : int
        Kernel of f_t over T (odd).

    Notes
    -----
    ``forward(x)``: [B, L, C, H, W] with L ≥ T → [B, L − T + 1, C, H, W], z^R
    for the centre of every window.

    Examples
    --------
    >>> block = FSTA(16, frames=5, spatial_maps=4, temporal_maps=3)
    >>> block(torch.rand(2, 5, 16, 12, 9)).shape
    torch.Size([2, 1, 16, 12, 9])
    """

    def __init__(self, channels: int, frames: int = 5, spatial_maps: int = 8, temporal_maps: int = 4,
                 temporal_kernel: int = 3):
        super().__init__()
        for name, value in (("channels", channels), ("frames", frames), ("spatial_maps", spatial_maps),
                            ("temporal_maps", temporal_maps), ("temporal_kernel", temporal_kernel)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if frames % 2 == 0:
            raise ValueError(f"frames must be odd (the current frame is the centre), got {frames}")
        if temporal_kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd, got {temporal_kernel}")
        self.channels, self.frames = channels, frames
        self.spatial_maps, self.temporal_maps = spatial_maps, temporal_maps
        self.f_s = nn.Conv2d(channels, spatial_maps, 3, padding=1)
        self.f_t = nn.Conv1d(channels, temporal_maps, temporal_kernel, padding=temporal_kernel // 2)
        self.f_p = nn.Conv2d(channels, spatial_maps * temporal_maps, 3, padding=1)
        self.w_z = nn.Conv2d(channels, channels, 1)

    def attention(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eqs. 1–6 for every T-frame window of ``x`` [B, L, C, H, W].

        Parameters
        ----------
        x : torch.Tensor
            [B, L, C, H, W], L ≥ T.

        Returns
        -------
        dict of str to torch.Tensor
            For W = L − T + 1 windows and P = H·W: ``A_s`` [B, L, M, P]
            (Eq. 1), ``G_s`` [B, L, M, C] (Eq. 2), ``A_t`` [B, W, N, T] (Eq. 3),
            ``G_st`` [B, W, C, M·N] (Eq. 4, index m·N + n), ``A_p`` [B, W, M·N, P]
            (Eq. 5), ``y`` [B, W, C, H, W] (Eq. 6).
        """
        if x.ndim != 5 or x.shape[2] != self.channels:
            raise ValueError(f"x must be [B, L, {self.channels}, H, W], got {tuple(x.shape)}")
        b, length, c, h, w = x.shape
        t, m, n = self.frames, self.spatial_maps, self.temporal_maps
        if length < t:
            raise ValueError(f"x has {length} frames; a window needs {t}")
        windows = length - t + 1
        frames = x.reshape(b * length, c, h, w)
        values = frames.reshape(b * length, c, h * w)
        # Eq. 1: M spatial maps per frame, softmax over the H·W positions.
        a_s = torch.softmax(self.f_s(frames).reshape(b * length, m, h * w), dim=-1)
        # Eq. 2: one aggregated value per frame, map and channel.
        g_s = torch.bmm(a_s, values.transpose(1, 2))                          # [B·L, M, C]
        # Eq. 3: x' pooled over space; f_t over T inside each window; softmax over T.
        pooled = x.mean(dim=(-2, -1))                                         # [B, L, C]
        pooled = pooled.unfold(1, t, 1).reshape(b * windows, c, t)            # [B·W, C, T]
        a_t = torch.softmax(self.f_t(pooled), dim=-1)                         # [B·W, N, T]
        # Eq. 4: G_st = G_s A_tᵀ per channel ([M, T] · [T, N]).
        g_s_win = g_s.reshape(b, length, m, c).unfold(1, t, 1)                # [B, W, M, C, T]
        g_st = torch.einsum("bwmct,bwnt->bwcmn", g_s_win, a_t.reshape(b, windows, n, t))
        g_st = g_st.reshape(b * windows, c, m * n)
        # Eq. 5: pixelwise weights from the current (centre) frame, softmax over M·N.
        centre = x[:, t // 2:t // 2 + windows].reshape(b * windows, c, h, w)
        a_p = torch.softmax(self.f_p(centre).reshape(b * windows, m * n, h * w), dim=1)
        # Eq. 6: y^R = G_st A_p.
        y = torch.bmm(g_st, a_p).reshape(b, windows, c, h, w)
        return {"A_s": a_s.reshape(b, length, m, h * w), "G_s": g_s.reshape(b, length, m, c),
                "A_t": a_t.reshape(b, windows, n, t), "G_st": g_st.reshape(b, windows, c, m * n),
                "A_p": a_p.reshape(b, windows, m * n, h * w), "y": y}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, length, c, h, w = x.shape
        y = self.attention(x)["y"]
        windows = y.shape[1]
        centre = x[:, self.frames // 2:self.frames // 2 + windows]
        # The join (our choice): z^R = x^R + W_z y^R, as in the non-local block.
        z = centre.reshape(b * windows, c, h, w) + self.w_z(y.reshape(b * windows, c, h, w))
        return z.reshape(b, windows, c, h, w)


class FSTANet(nn.Module):
    r"""Hierarchical encoder–decoder of densely connected modules with FSTA fusion.

    Every frame goes through the same encoder (features at full, 1/2 and 1/4
    resolution); at the scales listed in ``fsta_scales`` an :class:`FSTA` block
    fuses the features of the T frames around the current one into the current
    frame's features; at the other scales the current frame's own features pass
    on. The decoder goes from coarse to fine, joining each upsampled result
    with the fused features of the next finer scale::

        encoder, per frame   e_0 = Dense^k(conv3×3(B_t))                   full resolution, widths[0]
                             e_s = Dense^k(conv3×3 stride 2 (e_{s−1}))     1/2^s, widths[s]
        fusion, per scale    f_s = FSTA_s(e_s of frames n−m..n+m)          s in fsta_scales
                             f_s = e_s of frame n                          otherwise
        decoder              d_S = Dense^k(f_S)                            coarsest scale S
                             d_s = Dense^k(conv1×1(concat(up(d_{s+1}), f_s)))   up: 4×4 transposed conv, stride 2
        output               L_n = B_n + conv3×3(d_0)

    Choices the paper leaves open, made here (docs/models.md gives the reasons):

    * **T**: 5 frames (m = 2 on each side of the current frame);
    * **M, N**: 8 spatial and 4 temporal maps (32 values per channel);
    * **where FSTA sits**: at 1/2 and 1/4 resolution (``fsta_scales=(1, 2)``),
      where the features are wide and the spatial softmax sees the larger
      displacements in fewer pixels; the full-resolution skip carries the
      current frame's own detail;
    * **widths**: 32, 64, 128 channels at full, 1/2, 1/4 resolution; one dense
      module (4 layers, growth width/2) per scale in the encoder and one in the
      decoder;
    * **join of y^R and x^R**: residual through a 1×1 conv (see :class:`FSTA`);
    * **output**: a residual over the current blurry frame; the last conv starts
      at 0.1× its default initialization, so an untrained model is close to the
      identity;
    * **odd sizes**: stride-2 convs give ⌈H/2⌉; each upsampled map is cropped to
      the skip's size;
    * **clip ends**: ``pad=True`` repeats the first and last frame's features m
      times, so every frame is deblurred (the encoder is per frame, so this equals
      repeating the input frames).

    Parameters
    ----------
    frames : int
        T (odd).
    widths : sequence of int
        Channels per scale, finest first (its length is the number of scales).
    spatial_maps : int
        M.
    temporal_maps : int
        N.
    fsta_scales : sequence of int
        Indices into ``widths`` of the scales fused by FSTA.
    modules : int
        Dense modules per scale in the encoder and in the decoder.
    dense_layers : int
        Conv layers per dense module.

    Notes
    -----
    ``forward(clip)``: a blurry clip [B, L, 3, H, W] in [0, 1] → [B, L − 2m, 3,
    H, W], the latent frames of the frames with m neighbours each side;
    [B, L, 3, H, W] with ``pad=True``.

    Examples
    --------
    >>> model = FSTANet(widths=(8, 16), spatial_maps=2, temporal_maps=2, fsta_scales=(1,))
    >>> model(torch.rand(1, 6, 3, 17, 20), pad=True).shape
    torch.Size([1, 6, 3, 17, 20])
    """

    def __init__(self, frames: int = 5, widths: Sequence[int] = (32, 64, 128), spatial_maps: int = 8,
                 temporal_maps: int = 4, fsta_scales: Sequence[int] = (1, 2), modules: int = 1,
                 dense_layers: int = 4):
        super().__init__()
        widths = tuple(int(v) for v in widths)
        fsta_scales = tuple(sorted(set(int(s) for s in fsta_scales)))
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be a positive odd number (2m+1), got {frames}")
        if not widths or min(widths) < 2:
            raise ValueError(f"widths must be a non-empty list of channel counts ≥ 2, got {list(widths)}")
        if any(s < 0 or s >= len(widths) for s in fsta_scales):
            raise ValueError(f"fsta_scales must index widths (0..{len(widths) - 1}), got {list(fsta_scales)}")
        if modules < 1 or dense_layers < 1:
            raise ValueError(f"modules and dense_layers must be at least 1, got {modules}, {dense_layers}")
        self.frames, self.context = frames, frames // 2
        self.widths, self.fsta_scales = widths, fsta_scales

        def dense(width):
            return nn.Sequential(*[DenseBlock(width, max(1, width // 2), width, dense_layers, residual=True)
                                   for _ in range(modules)])

        self.stem = nn.ModuleList(
            [nn.Conv2d(3, widths[0], 3, padding=1)]
            + [nn.Conv2d(widths[s - 1], widths[s], 3, stride=2, padding=1) for s in range(1, len(widths))])
        self.encoder = nn.ModuleList(dense(wd) for wd in widths)
        self.fusion = nn.ModuleDict(
            {str(s): FSTA(widths[s], frames, spatial_maps, temporal_maps) for s in fsta_scales})
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[s + 1], widths[s], 4, stride=2, padding=1) for s in range(len(widths) - 1))
        self.merge = nn.ModuleList(nn.Conv2d(2 * widths[s], widths[s], 1) for s in range(len(widths) - 1))
        self.decoder = nn.ModuleList(dense(wd) for wd in widths)
        self.conv_out = nn.Conv2d(widths[0], 3, 3, padding=1)
        with torch.no_grad():
            self.conv_out.weight.mul_(0.1)
            self.conv_out.bias.zero_()

    def forward(self, clip: torch.Tensor, pad: bool = False) -> torch.Tensor:
        """Deblur every frame of ``clip`` that has m neighbours each side (every frame with ``pad``).

        Parameters
        ----------
        clip : torch.Tensor
            [B, L, 3, H, W], blurry frames in [0, 1].
        pad : bool
            Repeat the first and last frame m times so that every frame gets an output.

        Returns
        -------
        torch.Tensor
            Latent frames [B, L − 2m, 3, H, W] ([B, L, 3, H, W] with ``pad``), not clipped.
        """
        if clip.ndim != 5 or clip.shape[2] != 3:
            raise ValueError(f"clip must be [B, L, 3, H, W], got {tuple(clip.shape)}")
        b, length, _, h, w = clip.shape
        m = self.context
        if not pad and length < self.frames:
            raise ValueError(f"clip has {length} frames; a window needs {self.frames} (pass pad=True)")
        # Encoder, shared by the frames: every frame once.
        x = clip.reshape(b * length, 3, h, w)
        features = []
        for stem, encoder in zip(self.stem, self.encoder):
            x = encoder(F.relu(stem(x)))
            features.append(x)
        outputs = length if pad else length - 2 * m
        fused = []
        for s, e in enumerate(features):
            e = e.reshape(b, length, *e.shape[1:])
            if pad and m:
                e = torch.cat([e[:, :1].expand(-1, m, -1, -1, -1), e, e[:, -1:].expand(-1, m, -1, -1, -1)], 1)
            if str(s) in self.fusion:
                f = self.fusion[str(s)](e)
            else:
                f = e[:, m:m + outputs]
            fused.append(f.reshape(b * outputs, *f.shape[2:]))
        # Decoder, coarse to fine.
        d = self.decoder[-1](fused[-1])
        for s in range(len(self.widths) - 2, -1, -1):
            skip = fused[s]
            up = self.up[s](d)[..., :skip.shape[-2], :skip.shape[-1]]
            d = self.decoder[s](self.merge[s](torch.cat([up, skip], 1)))
        current = clip[:, m:m + outputs] if not pad else clip
        residual = self.conv_out(d).reshape(b, outputs, 3, h, w)
        return current + residual


class FSTATask(ModelTask):
    """Training and scoring of FSTANet (Suin & Rajagopalan, Sec. 4).

    * **Data**: video windows. A training item is ``clip_len`` consecutive
      blurry frames (default T = 5) and their sharp frames, a 256×256 patch at
      the same place in every frame; the dataset needs runs of at least T
      consecutive exposures (``--seq-len 5`` or longer clips).
    * **Loss** (the paper does not state it here; our choice): the mean absolute
      error (L1) of the latent frames against the sharp frames, over the frames
      of the window that have m real neighbours on each side (clip_len − 2m; 1
      for clip_len = T). No padded frame is trained on: padding exists for the
      ends of a video, and a training window cut from the middle of a run has
      real neighbours beyond its ends.
    * **Learning rate**: Adam, 1e-4, halved every 200 epochs:
      lr · decay^⌊step / (every · steps_per_epoch)⌋ with decay = 0.5 and
      every = 200 — for this model ``--lr-decay-every`` counts epochs, as the
      paper states its schedule.
    * **Evaluation**: every frame of the sample, with the neighbouring exposures
      of its run as context where the dataset has them and the first/last frame
      repeated at the run's ends (``pad=True``), so every frame is deblurred:
      one output per input frame.
    """

    learns_from = "video"
    inference = "window"
    # A video validator below dtb: its probe's held-out gain swung between -0.38 and +0.28 dB
    # (docs/models.md, "Presets"), so validate prefers dtb for video data.
    validates = {"video": 0}
    validator = "fsta"
    data_recipes = {"paper": "weights/panorama-sequence.toml", "probe": "weights/panorama-video.toml"}
    defaults = {"batch": 8, "patch": 256, "clip_len": 5, "lr": 1e-4, "lr_decay": 0.5,
                "lr_decay_every": 200, "weight_reg": 0.0}
    # Measured on 2 CPU cores (docs/models.md, "Presets").
    probe = {"model_args": {"frames": 3, "widths": [12, 24, 48], "dense_layers": 2}, "steps": 6000,
             "batch": 4, "patch": 48, "clip_len": 3, "lr": 4e-4, "lr_schedule": "cosine", "ema": 0.995}

    def loss(self, model, batch, config):
        if config.weight_reg:
            raise BlursynthError(f"--weight-reg {config.weight_reg}: fsta's loss has no weight penalty (use 0)")
        blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
        out = model(blur)
        m = (blur.shape[1] - out.shape[1]) // 2
        l1 = (out.float() - sharp[:, m:m + out.shape[1]]).abs().mean()
        return l1, {"l1": float(l1.detach())}

    def learning_rate(self, config, step, steps_per_epoch):
        return config.lr * config.lr_decay ** (step // (config.lr_decay_every * max(1, steps_per_epoch)))

    def outputs(self, model, batch):
        blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
        return score_frames(batch, model(blur, pad=True), sharp, blur)


FSTANet.task = FSTATask()


@register_model
def fsta(**kwargs) -> FSTANet:
    """FSTA video deblurring (Suin & Rajagopalan): dense encoder–decoder with FSTA fusion."""
    return FSTANet(**kwargs)
