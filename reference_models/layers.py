"""Blocks shared by two or more reference models (timm's ``layers/`` is the model for this).

A block used by one model only stays in that model's file; it moves here when a
second model needs it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DenseBlock", "ResBlock"]


class ResBlock(nn.Module):
    """``x + conv3×3(ReLU(conv3×3(x)))`` at constant width, no normalization.

    The residual block of STRCNN+DTB (Kim et al. 2017, Sec. 4.1) and of most
    restoration networks since EDSR: batch statistics would leak across a
    recurrence and across the frames of a clip, so there is no normalization.

    Parameters
    ----------
    width : int
        Input and output channels.

    Shape
    -----
    [B, width, H, W] -> [B, width, H, W].

    Examples
    --------
    >>> block = ResBlock(8)
    >>> block(torch.zeros(1, 8, 5, 5)).shape
    torch.Size([1, 8, 5, 5])
    """

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class DenseBlock(nn.Module):
    r"""Densely connected conv3×3 layers (Huang et al. 2017) fused by a 1×1 conv.

    ::

        f_0 = x,  f_k = act(conv3×3_k(concat(f_0, …, f_{k-1})))     k = 1..layers, growth channels each
        y   = conv1×1(concat(f_0, …, f_layers))                      out_channels
        out = x + y        (residual: the residual dense block's local
                            residual learning, Zhang et al. 2018; FSTA)
              act(y)       (otherwise; Blur2Video's decoder blocks)

    FSTA (:mod:`reference_models.fsta`: ReLU, residual) and Blur2Video
    (:mod:`reference_models.blur2video`: LeakyReLU(0.2), not residual, wider
    output) use it. Its parameters are ``convs.{k}`` and ``fuse`` (the
    activation has none), the names both models' checkpoints hold.

    Parameters
    ----------
    in_channels : int
        Input channels.
    growth : int
        Channels each conv3×3 adds.
    out_channels : int
        Output channels; equal to ``in_channels`` when ``residual``.
    layers : int
        Conv3×3 layers.
    act : nn.Module, optional
        The activation after each conv3×3 (and after the fusion unless
        ``residual``); ``None``: ReLU.
    residual : bool
        Add the input to the fused features, with no activation after them.

    Shape
    -----
    [B, in_channels, H, W] -> [B, out_channels, H, W].

    Examples
    --------
    >>> block = DenseBlock(8, 4, 8, layers=3, residual=True)
    >>> block(torch.zeros(1, 8, 5, 5)).shape
    torch.Size([1, 8, 5, 5])
    """

    def __init__(self, in_channels: int, growth: int, out_channels: int, layers: int = 4,
                 act: nn.Module | None = None, residual: bool = False):
        super().__init__()
        if residual and out_channels != in_channels:
            raise ValueError(f"a residual DenseBlock keeps its width: out_channels must be in_channels "
                             f"({in_channels}), got {out_channels}")
        self.convs = nn.ModuleList(nn.Conv2d(in_channels + k * growth, growth, 3, padding=1)
                                   for k in range(layers))
        self.fuse = nn.Conv2d(in_channels + layers * growth, out_channels, 1)
        self.act = nn.ReLU() if act is None else act
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for conv in self.convs:
            features.append(self.act(conv(torch.cat(features, 1))))
        fused = self.fuse(torch.cat(features, 1))
        return x + fused if self.residual else self.act(fused)
