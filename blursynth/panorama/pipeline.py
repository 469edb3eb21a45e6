"""The ``panorama`` command as a library call: discover, check, plan, then run the engine."""

from __future__ import annotations

import math

import blursynth.budget as budget
import blursynth.panorama.geometry as geometry
from blursynth.run.engine import RunOptions, default_out, run
from blursynth.errors import BlursynthError
from blursynth.panorama.config import KIND, PanoramaConfig
from blursynth.panorama.plan import plan
from blursynth.panorama.render import render
from blursynth.dataset import Manifest
from blursynth.sources import panoramas as sources
from blursynth.sources.panoramas import Panorama


def check_device(device: str) -> None:
    """Fail before planning when ``--device cuda`` cannot work here.

    Raises
    ------
    BlursynthError
        No torch, or no CUDA device visible to it.
    """
    if device == "cuda":
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            raise BlursynthError("--device cuda: PyTorch is not installed") from None
        if not torch.cuda.is_available():
            raise BlursynthError("--device cuda: PyTorch sees no CUDA device here; use --device cpu")


def check_budget(config: PanoramaConfig, out) -> str:
    """Refuse at once, with the estimate, what cannot work (before planning):
    one sample larger than this machine's memory, a plan of more than
    :data:`blursynth.budget.MAX_PLANNED_SAMPLES` samples, or a dataset larger
    than the free space of ``out``. Returns the size estimate and the free space
    as one line (said before the first sample)."""
    w, h = config.size
    L, K = config.seq_len, config.latent
    pano_w = 2 * math.ceil(math.pi * geometry.focal_length(w, config.fov))
    # the uint8 sample, float32 RGBL frames kept (latent + sharp + sum + one
    # being rendered), the two remap maps, the linear panorama and its padded
    # copy (a quarter of the width more on each side, geometry.seam_pad), and
    # one more padded panorama loaded ahead by a spare thread
    memory = (budget.frame_bytes(L, K, h, w) + 16 * h * w * (L * (K + 1) + 2) + 8 * h * w
              + 4 * 16 * pano_w * (pano_w // 2))
    budget.check_sample_memory(memory, f"--size {w}x{h}, --seq-len {L}, --latent {K}")
    budget.check_plan_size(config.n, f"--n {config.n}")
    return budget.check_disk(out, config.n * (budget.frame_bytes(L, K, h, w) + budget.SAMPLE_OVERHEAD),
                             budget.count(config.n, "sample"))


def discover(config: PanoramaConfig, skip_bad: bool = False,
             max_pixels: int | None = None) -> tuple[list[Panorama], list[dict]]:
    """The panoramas of ``config.src``, their headers checked and their files stamped.

    Parameters
    ----------
    config : PanoramaConfig
    skip_bad : bool
        List unusable panoramas instead of raising (``--skip-bad``).
    max_pixels : int, optional
        The pixel limit of a panorama's header (default 400 megapixels, ``--max-megapixels``).

    Returns
    -------
    panoramas : list of Panorama
        Absolute paths, with the size and mtime of each file (:meth:`Panorama.planned`).
    skipped : list of dict
        ``{"source": id, "reason": ...}`` per unusable panorama.

    Raises
    ------
    BlursynthError
        No usable panorama.
    """
    panoramas, skipped = sources.discover(config.src, skip_bad=skip_bad, max_pixels=max_pixels)
    if not panoramas:
        first = f" (e.g. {skipped[0]['source']}: {skipped[0]['reason']})" if skipped else ""
        raise BlursynthError(f"--src: no usable panorama, every one was skipped{first}")
    return [pano.planned() for pano in panoramas], skipped


def synthesize(config: PanoramaConfig, options: RunOptions) -> Manifest:
    """Discover, plan, render and write a whole dataset (the ``panorama`` command).

    Parameters
    ----------
    config : PanoramaConfig
        What to make.
    options : RunOptions
        Where and how to run.

    Returns
    -------
    Manifest
    """
    check_device(config.device)
    # the budget needs no source: a plan too large is refused before the folders are walked
    estimate = check_budget(config, options.out or default_out(KIND))
    panoramas, skipped = discover(config, skip_bad=options.skip_bad, max_pixels=options.max_pixels)
    specs = plan(config, panoramas)
    return run(KIND, config.to_dict(), config.seed, specs, render, options, skipped=skipped, announce=[estimate])
