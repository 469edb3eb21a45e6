"""Blur2Video's losses (Sec. 4.3) and the order rule of its evaluation (Sec. 5).

Argaw, Kim, Rameau, Zhang, Kweon, "Restoration of Video Frames from a Single
Blurred Image with Motion Understanding", CVPR Workshops 2021. Pure functions:
:func:`photometric_loss` (Eq. 3), :func:`transformation_consistency_loss`
(Eq. 4), :func:`penalty_loss` (Eq. 5), :func:`combined_loss` (Eq. 6), and
:func:`better_order`, which settles the ambiguity between a motion and its
reverse (one blurred image shows both) when a sequence is scored.
"""

from __future__ import annotations

from typing import Sequence

import torch

from reference_models.blur2video_blocks import pyramid
from reference_models.metrics import psnr

__all__ = ["LOSS_SWITCHES", "photometric_loss", "transformation_consistency_loss", "penalty_loss",
           "combined_loss", "better_order"]

LOSS_SWITCHES = ("pml", "pml+tcl", "pml+tcl+pt")   # the loss ablation (Table 4)


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
