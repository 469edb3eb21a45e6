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

:mod:`.blur2video_blocks` holds the warps, transformers, encoder and decoder;
:mod:`.blur2video_losses` the losses of Sec. 4.3 (Eq. 3–6) and the order rule
of the evaluation. :class:`Blur2VideoTask` ties model, data, loss, schedule
(Sec. 5) and that order rule together.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from blursynth.errors import BlursynthError
from reference_models.blur2video_blocks import LEVELS, STN, Decoder, Encoder, LocalWarp, pyramid
from reference_models.blur2video_losses import (
    LOSS_SWITCHES, better_order, combined_loss, penalty_loss, photometric_loss, transformation_consistency_loss,
)
from reference_models.data import LatentDataset, PairDataset, SampleRef, ShardIndex, to_float
from reference_models.registry import register_model
from reference_models.task import ModelTask, core_model

__all__ = ["Blur2Video", "Blur2VideoTask", "blur2video", "blur2video_ftn_stn", "blur2video_ftn_stn_lw",
           "blur2video_ftn_stn_itn"]


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

    learns_from = "latent"  # pair data too: dataset() picks PairDataset when the samples have no latent frames
    inference = "image"
    validates = {"latent": 10, "pair": 10}  # validate's model for single blurred frames
    validator = "blur2video"
    data_recipes = {"paper": "argaw2021_panorama", "probe": "weights/panorama-latent.toml"}
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
