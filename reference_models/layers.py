"""Blocks shared by two or more reference models (timm's ``layers/`` is the model for this).

A block used by one model only stays in that model's file; it moves here when a
second model needs it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ResBlock"]


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
