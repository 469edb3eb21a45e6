"""The ``panorama`` command as a library call: check, plan, then run the engine."""

from __future__ import annotations

from blursynth.engine import RunOptions, run
from blursynth.errors import BlursynthError
from blursynth.panorama.config import KIND, PanoramaConfig
from blursynth.panorama.plan import plan
from blursynth.panorama.render import render
from blursynth.shards import Manifest


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
    specs, skipped = plan(config, skip_bad=options.skip_bad)
    return run(KIND, config.to_dict(), config.seed, specs, render, options, skipped=skipped)
