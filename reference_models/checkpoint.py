"""Checkpoints of a reference-model run: save, load, rebuild the model.

A run folder holds ``checkpoint.pt`` (everything to resume: weights, optimizer,
RNG state, step, config) and ``model.pt`` (the same without optimizer and RNG:
the file to ship). Both hold only tensors and JSON-able values, so
``torch.load(weights_only=True)`` loads them and a hostile file never runs code.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from blursynth.errors import BlursynthError
from blursynth.atomic import atomic_write_bytes
from reference_models.registry import create_model

__all__ = ["CHECKPOINT", "CHECKPOINT_FORMAT", "WEIGHTS", "build_model", "load_checkpoint",
           "model_from_checkpoint", "save_checkpoint"]

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.pt"
CHECKPOINT_FORMAT = "blursynth-reference/1"


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save`` ``payload`` to ``path`` through a temporary file and a rename."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint or weights file with ``weights_only=True``.

    Parameters
    ----------
    path : str or Path
        A file, or a run folder (its ``checkpoint.pt``, else its ``model.pt``).

    Raises
    ------
    BlursynthError
        Naming the file when it is missing, unreadable or not a blursynth checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT if (path / CHECKPOINT).exists() else path / WEIGHTS
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BlursynthError(f"{path}: no checkpoint (train first with 'blursynth train-reference')") from None
    except Exception as exc:  # corrupt or foreign file
        raise BlursynthError(f"{path}: not a loadable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise BlursynthError(f"{path}: not a blursynth reference-model checkpoint")
    return ckpt


def build_model(name: str, model_args: dict) -> torch.nn.Module:
    """``create_model(name, **model_args)`` with bad arguments as one-line user errors."""
    try:
        return create_model(name, **model_args)
    except (TypeError, ValueError) as exc:
        raise BlursynthError(f"model {name!r}: {exc} (check --model-arg)") from None


def model_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a run folder or checkpoint file.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, on the CPU.
    checkpoint : dict
        The loaded checkpoint.
    """
    ckpt = load_checkpoint(path)
    model = build_model(ckpt["model"], ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval(), ckpt
