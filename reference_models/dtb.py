"""STRCNN+DTB: online video deblurring with dynamic temporal blending.

Kim, Lee, Schölkopf, Hirsch, "Online Video Deblurring via Dynamic Temporal
Blending Network", ICCV 2017 (Sec. 4–5). Variants for the paper's ablation:
``cnn`` (no recurrence, no blending), ``strcnn`` (recurrence, no blending) and
``dtb`` (STRCNN+DTB, the full model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from reference_models.data import to_float
from reference_models.layers import ResBlock
from reference_models.registry import register_model
from reference_models.task import ModelTask, core_model, score_frames

__all__ = ["DTBNet", "DTBState", "DTBTask", "dtb", "strcnn", "cnn", "weight_penalty"]


@dataclass
class DTBState:
    """What the recurrence carries from one step to the next.

    Both tensors are float32 whatever the autocast dtype: the state is carried
    over the whole video, and bf16 rounding would accumulate along it.

    Attributes
    ----------
    feature : torch.Tensor or None
        F_{n−1}, the decoder's feature map for the next step,
        [B, feature_channels, ⌈H/2⌉, ⌈W/2⌉] (``None`` before the first step).
    hidden : torch.Tensor or None
        h̃_{n−1}, the blended encoder output, [B, width, ⌈H/2⌉, ⌈W/2⌉]
        (``None`` before the first step or without blending).
    """

    feature: torch.Tensor | None = None
    hidden: torch.Tensor | None = None

    def detach(self) -> "DTBState":
        """The same state cut from the autograd graph (truncated backpropagation)."""
        return DTBState(None if self.feature is None else self.feature.detach(),
                        None if self.hidden is None else self.hidden.detach())


class DTBNet(nn.Module):
    r"""Spatio-temporal recurrent deblurring network with dynamic temporal blending.

    One step maps the 2m+1 blurry frames B_{n−m..n+m} (colour, 0–1) and the
    state (F_{n−1}, h̃_{n−1}) to the latent frame L_n and the new state
    (F_n, h̃_n); all parameters are shared across time (Sec. 4).

    Encoder (Sec. 4.1)::

        x   = ReLU(conv5×5(concat(B_{n−m..n+m})))                 full resolution, 32 ch
        x   = ReLU(conv3×3, stride 2 (x))                         half resolution
        h_n = ResBlock^blocks(concat(x, F_{n−1}))                 width ch (32 + 32)

    Dynamic temporal blending (Sec. 4.2)::

        w_n = min(1, |tanh(A h̃_{n−1} + B h_n)| + β)               A, B: one conv5×5 over concat
        h̃_n = w_n ⊗ h_n + (1 − w_n) ⊗ h̃_{n−1}

    Decoder::

        d   = ResBlock^blocks(h̃_n)                                64 filters 3×3
        F_n = conv3×3(d)                                          32 ch, half resolution
        L_n = B_n + conv3×3(ReLU(deconv4×4, stride 2 (d)))        cropped to H×W

    Choices the paper leaves open, made here:

    * **first filter**: 5×5, stride 1, 32 channels, on the 2m+1 frames stacked
      along channels (9 input channels for m = 1);
    * **where the resolution halves**: the second encoder layer, a 3×3 conv with
      stride 2 (padding 1, so ⌈H/2⌉×⌈W/2⌉ for odd sizes); everything between it
      and the decoder's 4×4 transposed conv (stride 2) runs at half resolution,
      which is where F_n lives (the paper: "half the input size, 32 channels");
    * **channel counts**: the stride-2 layer gives ``width − feature_channels``
      = 32 channels, so concat with F_{n−1} is exactly ``width`` = 64 and the
      residual blocks need no extra fusion layer; without recurrence (``cnn``)
      it gives ``width`` channels directly;
    * **residual blocks**: conv–ReLU–conv plus identity, no normalization;
    * **input residual**: the network predicts L_n − B_n (the centre blurry
      frame is added back), and the last layer starts at 0.1× the default
      initialization, so an untrained model is close to the identity;
    * **β**: stored as an unconstrained parameter ``beta_logit`` with
      β = sigmoid(beta_logit), which keeps β in (0, 1) and always passes a
      gradient (a clamp would stop it at the bounds); β starts at 0.5;
    * **first step**: F_0 = 0 and h̃_0 := h_1 (so h̃_1 = h_1 whatever w_1 is);
    * **clip ends**: :meth:`forward` returns L for the frames with m
      neighbours on each side; ``pad=True`` repeats the first and last frames m
      times so that every frame gets an output (what an online system does at
      the start of a video, and at its end if it does not wait for a frame);
    * **precision**: under bf16 autocast the blending weight w_n, the blend
      and the carried state (h̃_n, F_n) are computed and kept in float32, so
      that 1 − w_n is not quantized near w_n ≈ 1 and rounding does not
      accumulate along the video; the convolutions run in bf16.

    Parameters
    ----------
    frames : int
        2m+1, blurry frames per step (odd).
    width : int
        Channels of the residual blocks (paper: 64).
    feature_channels : int
        Channels of F_n (paper: 32).
    blocks : int
        Residual blocks in the encoder and in the decoder (paper: 4).
    recurrent : bool
        Feed F_{n−1} back into the encoder (STRCNN).
    blending : bool
        Dynamic temporal blending of the encoder output (DTB).
    beta : float
        Initial β, in (0, 1).

    Shape
    -----
    - :meth:`step`: frames [B, 2m+1, 3, H, W] -> L_n [B, 3, H, W], new state.
    - :meth:`forward`: clip [B, T, 3, H, W] -> [B, T − 2m, 3, H, W]
      ([B, T, 3, H, W] with ``pad=True``).

    Examples
    --------
    >>> model = DTBNet(blocks=2)
    >>> clip = torch.rand(1, 5, 3, 33, 40)
    >>> model(clip).shape
    torch.Size([1, 3, 3, 33, 40])
    >>> state = None                                 # online, frame by frame
    >>> for n in range(1, 4):
    ...     latent, state = model.step(clip[:, n - 1:n + 2], state)
    """

    def __init__(self, frames: int = 3, width: int = 64, feature_channels: int = 32, blocks: int = 4,
                 recurrent: bool = True, blending: bool = True, beta: float = 0.5):
        super().__init__()
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be a positive odd number (2m+1), got {frames}")
        if blocks < 1:
            raise ValueError(f"blocks must be at least 1, got {blocks}")
        if recurrent and not 0 < feature_channels < width:
            raise ValueError(f"feature_channels must be in (0, width={width}), got {feature_channels}")
        if not 0.0 < beta < 1.0:
            raise ValueError(f"beta must be in (0, 1), got {beta}")
        self.frames = frames
        self.context = frames // 2
        self.width = width
        self.feature_channels = feature_channels if recurrent else 0
        self.recurrent = recurrent
        self.blending = blending
        first = 32
        # Encoder
        self.conv_in = nn.Conv2d(3 * frames, first, 5, padding=2)
        self.conv_down = nn.Conv2d(first, width - self.feature_channels, 3, stride=2, padding=1)
        self.encoder = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        # Dynamic temporal blending: A h̃_{n−1} + B h_n as one conv over the concat.
        if blending:
            self.blend = nn.Conv2d(2 * width, width, 5, padding=2)
            self.beta_logit = nn.Parameter(torch.tensor(math.log(beta / (1.0 - beta))))
        # Decoder
        self.decoder = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        if recurrent:
            self.conv_feature = nn.Conv2d(width, feature_channels, 3, padding=1)
        self.conv_up = nn.ConvTranspose2d(width, first, 4, stride=2, padding=1)
        self.conv_out = nn.Conv2d(first, 3, 3, padding=1)
        with torch.no_grad():
            self.conv_out.weight.mul_(0.1)
            self.conv_out.bias.zero_()

    @property
    def beta(self) -> torch.Tensor:
        """β of Sec. 4.2, in (0, 1)."""
        return torch.sigmoid(self.beta_logit)

    def _channels_last(self) -> bool:
        return self.conv_in.weight.is_contiguous(memory_format=torch.channels_last) \
            and not self.conv_in.weight.is_contiguous()

    def step(self, frames: torch.Tensor, state: DTBState | None = None) -> tuple[torch.Tensor, DTBState]:
        """One online step: B_{n−m..n+m} and the state of step n−1 -> L_n and the state of step n.

        Parameters
        ----------
        frames : torch.Tensor
            [B, 2m+1, 3, H, W], blurry frames in [0, 1], centre frame B_n.
        state : DTBState or None
            What the previous step returned (``None`` at the start of a video).

        Returns
        -------
        latent : torch.Tensor
            L_n [B, 3, H, W] (not clipped to [0, 1]).
        state : DTBState
            The new state (float32).
        """
        if frames.ndim != 5 or frames.shape[1] != self.frames or frames.shape[2] != 3:
            raise ValueError(f"frames must be [B, {self.frames}, 3, H, W], got {tuple(frames.shape)}")
        state = state or DTBState()
        b, _, _, h, w = frames.shape
        centre = frames[:, self.context]
        x = frames.flatten(1, 2)
        if self._channels_last():
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.conv_in(x))
        x = F.relu(self.conv_down(x))
        if self.recurrent:
            feature = state.feature
            if feature is None:
                feature = x.new_zeros(b, self.feature_channels, *x.shape[-2:])
            elif feature.shape[0] != b or feature.shape[-2:] != x.shape[-2:]:
                raise ValueError(f"state.feature is {tuple(feature.shape)}, expected "
                                 f"[{b}, {self.feature_channels}, {x.shape[-2]}, {x.shape[-1]}]; "
                                 "the frame size or batch changed (start with state=None)")
            x = torch.cat([x, feature.to(x.dtype)], 1)
        hidden = self.encoder(x)
        if self.blending:
            # Sec. 4.2, Eq. 2-3; in float32 (see "precision" above).
            hidden = hidden.float()
            prev = hidden if state.hidden is None else state.hidden.float()
            logits = self.blend(torch.cat([prev, hidden], 1)).float()
            weight = torch.clamp(torch.tanh(logits).abs() + self.beta.float(), max=1.0)
            hidden = weight * hidden + (1.0 - weight) * prev
        d = self.decoder(hidden)
        new_feature = self.conv_feature(d).float() if self.recurrent else None
        residual = self.conv_out(F.relu(self.conv_up(d)))[..., :h, :w]
        latent = centre + residual
        return latent, DTBState(new_feature, hidden if self.blending else None)

    def forward(self, clip: torch.Tensor, state: DTBState | None = None, pad: bool = False,
                return_state: bool = False):
        """Run the recurrence over a clip, frame by frame.

        Parameters
        ----------
        clip : torch.Tensor
            [B, T, 3, H, W], blurry frames in [0, 1].
        state : DTBState or None
            State to continue from (``None``: start of a video).
        pad : bool
            Repeat the first and last frame m times so that every frame gets an output.
        return_state : bool
            Also return the state after the last step.

        Returns
        -------
        latent : torch.Tensor
            [B, T − 2m, 3, H, W] ([B, T, 3, H, W] with ``pad``).
        state : DTBState
            The state after the last step (only with ``return_state``).
        """
        if clip.ndim != 5 or clip.shape[2] != 3:
            raise ValueError(f"clip must be [B, T, 3, H, W], got {tuple(clip.shape)}")
        m = self.context
        if pad and m:
            clip = torch.cat([clip[:, :1].expand(-1, m, -1, -1, -1), clip,
                              clip[:, -1:].expand(-1, m, -1, -1, -1)], 1)
        if clip.shape[1] < self.frames:
            raise ValueError(f"clip has {clip.shape[1]} frames; a step needs {self.frames} "
                             "(pass pad=True for shorter clips)")
        outputs = []
        for n in range(m, clip.shape[1] - m):
            latent, state = self.step(clip[:, n - m:n + m + 1], state)
            outputs.append(latent)
        out = torch.stack(outputs, 1)
        return (out, state) if return_state else out


def weight_penalty(model: torch.nn.Module) -> torch.Tensor:
    """Σ ||W||² over the weight tensors of ``model`` (biases and β excluded), Kim et al. Eq. 4."""
    return sum(p.pow(2).sum() for p in core_model(model).parameters() if p.ndim > 1)


class DTBTask(ModelTask):
    """Training and scoring of STRCNN+DTB (Kim et al. 2017, Sec. 5.2–5.3).

    * **Loss** (Eq. 4): the squared error of every latent frame L_n against its
      sharp frame, normalized by the frame's size (the mean over its pixels and
      colour channels) and *summed* over the frames n of the clip that have both
      neighbours (11 of 13), averaged over the batch; plus λ Σ‖W‖² over the
      convolution weights (``config.weight_reg``). Summing over frames rather
      than averaging keeps λ = 1e-5 as weak next to the data term as in the paper.
    * **Learning rate**: lr · decay^⌊step / every⌋ (staircase, 0.96 every 10k).
    * **Evaluation** (``inference = "online"``): the paper deblurs a video
      sequentially, so the recurrent state carries across the consecutive
      exposures of a run: every run is stepped from its first frame, through
      the frames of samples that are not scored, and each scored sample's
      frames are taken as the sequence reaches them (the first/last frame of
      the run repeated m times at its ends). Evaluation, ``validate`` and
      ``deblur`` all run it this way.
    """

    learns_from = "video"
    inference = "online"
    validates = {"video": 10}  # validate's model for video data (docs/models.md, "validate")
    validator = "dtb"
    data_recipes = {"paper": "weights/panorama-sequence.toml", "probe": "weights/panorama-video.toml"}
    defaults = {"batch": 8, "patch": 128, "clip_len": 13, "lr": 1e-4, "lr_decay": 0.96,
                "lr_decay_every": 10_000, "weight_reg": 1e-5}
    # Measured on 2 CPU cores (docs/models.md, "Presets"): half the blocks and width.
    # weight_reg 0: with Adam, the paper's λ‖W‖² inside the loss pulls every weight to 0 at a
    # rate of about lr per step wherever the data gradient is weak (mild blur, as the default
    # highspeed data): measured, Σ‖W‖² fell from about 100 to 0.002 in 2500 steps and the
    # model stayed the identity (gain +0.00 dB); without it, +0.12 dB after 600 steps.
    probe = {"model_args": {"blocks": 2, "width": 32, "feature_channels": 16}, "steps": 2500,
             "batch": 4, "patch": 48, "clip_len": 4, "lr": 3e-4, "lr_schedule": "cosine", "ema": 0.995,
             "weight_reg": 0.0}

    def loss(self, model, batch, config):
        blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
        out = model(blur)
        m = (blur.shape[1] - out.shape[1]) // 2
        err = (out.float() - sharp[:, m:m + out.shape[1]]).pow(2)
        data = err.mean(dim=(2, 3, 4)).sum(1).mean()  # Eq. 4: Σ_n ||L_n − L_n^gt||² / M
        terms = {"data": float(data.detach()), "mse": float(err.detach().mean())}
        if not config.weight_reg:
            return data, terms
        penalty = weight_penalty(model)
        terms["weight_l2"] = float(penalty.detach())
        return data + config.weight_reg * penalty, terms

    def learning_rate(self, config, step, steps_per_epoch):
        return config.lr * config.lr_decay ** (step // config.lr_decay_every)

    def outputs(self, model, batch):
        blur, sharp = to_float(batch["blur"]), to_float(batch["sharp"])
        return score_frames(batch, model(blur, pad=True), sharp, blur)


DTBNet.task = DTBTask()


def _create_dtb(variant: str, **kwargs) -> DTBNet:
    flags = {"cnn": dict(recurrent=False, blending=False),
             "strcnn": dict(recurrent=True, blending=False),
             "dtb": dict(recurrent=True, blending=True)}[variant]
    clash = set(flags) & set(kwargs)
    if clash:
        raise ValueError(f"{', '.join(sorted(clash))} is fixed by the variant {variant!r}")
    return DTBNet(**flags, **kwargs)


@register_model
def dtb(**kwargs) -> DTBNet:
    """STRCNN+DTB (Kim et al. 2017): recurrent features and dynamic temporal blending."""
    return _create_dtb("dtb", **kwargs)


@register_model
def strcnn(**kwargs) -> DTBNet:
    """STRCNN (Kim et al. 2017, ablation): recurrent features, no blending."""
    return _create_dtb("strcnn", **kwargs)


@register_model
def cnn(**kwargs) -> DTBNet:
    """CNN (Kim et al. 2017, ablation): frame-stack encoder-decoder, no recurrence, no blending."""
    return _create_dtb("cnn", **kwargs)
