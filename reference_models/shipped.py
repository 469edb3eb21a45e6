"""The weights that ship with blursynth: ``reference_models/weights/<model>/``.

Each folder holds ``model.pt`` (a checkpoint loadable with ``weights_only``),
``config.json``, ``log.jsonl``, ``curves.png``, ``dataset.toml`` (the panorama
recipe its data was made with) and ``eval.json`` (its score on a held-out
scene). ``reference_models/weights/train.sh`` made them (docs/models.md,
"Shipped weights"). ``eval-reference --weights MODEL`` and
``deblur --model MODEL`` use them; ``deblur`` without ``--run`` or ``--model``
picks the shipped model that fits its input (:func:`model_for_footage`).
"""

from __future__ import annotations

import json
from pathlib import Path

from blursynth.errors import BlursynthError
from reference_models.checkpoint import WEIGHTS

__all__ = ["WEIGHTS_ROOT", "model_for_footage", "shipped_models", "shipped_weights"]

WEIGHTS_ROOT = Path(__file__).resolve().parent / "weights"


def shipped_models() -> list[str]:
    """Names of the models with shipped weights, sorted."""
    if not WEIGHTS_ROOT.is_dir():
        return []
    return sorted(p.parent.name for p in WEIGHTS_ROOT.glob(f"*/{WEIGHTS}") if p.is_file())


def shipped_weights(model: str, option: str = "--model") -> Path:
    """The ``model.pt`` shipped for ``model``.

    Raises
    ------
    BlursynthError
        Naming ``option`` when no weights ship for ``model``.
    """
    path = WEIGHTS_ROOT / str(model) / WEIGHTS
    if "/" in str(model) or not path.is_file():
        have = shipped_models()
        raise BlursynthError(f"{option} {model}: no shipped weights for this model; shipped: "
                             f"{', '.join(have) if have else 'none'} (or train one and pass --run)")
    return path


def _held_out_gain(model: str) -> float:
    try:
        return float(json.loads((WEIGHTS_ROOT / model / "eval.json").read_text())["psnr"]["gain"])
    except (OSError, ValueError, KeyError, TypeError):
        return float("-inf")


def model_for_footage(medium: str) -> str:
    """The shipped model for footage that is ``medium`` (``frames``, ``video`` or ``image``).

    A video (or a folder of frames) goes to a shipped video model (its task's
    inference ``online`` or ``window``), one image to a shipped ``image``
    model; among several, the one with the best held-out gain in its
    ``eval.json``.
    """
    from reference_models.registry import is_model, task_for

    want_video = medium != "image"
    fits = [m for m in shipped_models() if is_model(m) and (task_for(m).inference != "image") == want_video]
    if not fits:
        raise BlursynthError(f"no shipped model deblurs {'a video' if want_video else 'a single image'}; "
                             "pass --run with a trained run folder")
    return max(fits, key=lambda m: (_held_out_gain(m), m))
