"""Checkpoints of a reference-model run: save, load, rebuild the model.

A run folder holds ``checkpoint.pt`` (everything to resume: weights, optimizer,
RNG state, step, config) and ``model.pt`` (the same without optimizer and RNG:
the file to ship). Both hold only tensors and JSON-able values, so
``torch.load(weights_only=True)`` loads them and a hostile file never runs code.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import torch

from blursynth.errors import BlursynthError
from blursynth.atomic import atomic_write_bytes
from blursynth.infiles import open_input
from reference_models.registry import create_model, is_model, list_models

__all__ = ["CHECKPOINT", "CHECKPOINT_FORMAT", "WEIGHTS", "build_model", "check_fields", "load_checkpoint",
           "load_weights", "model_from_checkpoint", "save_checkpoint"]

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "model.pt"
CHECKPOINT_FORMAT = "blursynth-reference/1"


def save_checkpoint(path: str | Path, payload: dict) -> None:
    """``torch.save`` ``payload`` to ``path`` through a temporary file and a rename."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint or weights file with ``weights_only=True`` and check its fields.

    The file is refused by type and size before it is opened
    (:func:`blursynth.infiles.open_input`: a FIFO, a device or a folder is not
    a checkpoint). A file that holds anything but tensors and plain values is
    refused in one line of blursynth's own: torch's message would advise
    ``weights_only=False``, which is how a hostile file runs code.

    Parameters
    ----------
    path : str or Path
        A file, or a run folder (its ``checkpoint.pt``, else its ``model.pt``).

    Raises
    ------
    BlursynthError
        Naming the file when it is missing, not a regular file, over the
        checkpoint cap, unreadable, not a blursynth checkpoint, or has fields of
        the wrong type (:func:`check_fields`).
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT if (path / CHECKPOINT).exists() else path / WEIGHTS
    with open_input(path, "checkpoint",
                    missing=f"{path}: no checkpoint (train first with 'blursynth train-reference')") as fh:
        try:
            ckpt = torch.load(fh, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # weights_only refused a global: never repeat torch's advice
            raise BlursynthError(f"{path}: refused: it holds Python objects besides tensors and plain values, "
                                 "and blursynth loads nothing that could run code") from None
        except Exception as exc:  # corrupt or foreign file
            raise BlursynthError(f"{path}: not a loadable checkpoint ({_first_line(exc)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise BlursynthError(f"{path}: not a blursynth reference-model checkpoint")
    check_fields(ckpt, path)
    return ckpt


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_fields(ckpt: dict, path: str | Path) -> None:
    """Refuse a checkpoint whose fields are not of the types blursynth writes.

    ``model`` is a registered model's name, ``model_args`` and ``config`` are
    objects, ``step`` a non-negative integer, ``state_dict`` maps names to
    tensors, and floating-point tensors are finite (a run that diverged, or a
    doctored file, would deblur into NaN).

    Raises
    ------
    BlursynthError
        One line naming the file and the field.
    """
    def bad(field, says):
        raise BlursynthError(f"{path}: {field} {says}; not a checkpoint blursynth wrote")

    name = ckpt.get("model")
    if not isinstance(name, str):
        bad("'model'", "is not a model name")
    if not is_model(name):
        raise BlursynthError(f"{path}: a checkpoint of model {name!r}, which this blursynth does not have "
                             f"(it has {', '.join(list_models())})")
    for field in ("model_args", "config"):
        if not isinstance(ckpt.get(field), dict):
            bad(repr(field), "is not an object")
    step = ckpt.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        bad("'step'", "is not a non-negative integer")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        bad("'state_dict'", "is not a mapping of names to tensors")
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise BlursynthError(f"{path}: weight {key!r} holds NaN or infinite values (the run diverged?); "
                                 "use an earlier checkpoint or train again")


def build_model(name: str, model_args: dict, where: str | Path | None = None) -> torch.nn.Module:
    """``create_model(name, **model_args)`` with bad arguments as one-line user errors.

    ``where``: the checkpoint the arguments come from (named in the message);
    None when they come from ``--model-arg``.
    """
    try:
        return create_model(name, **model_args)
    except (TypeError, ValueError) as exc:
        if where is not None:
            raise BlursynthError(f"{where}: model {name!r} cannot be built from its model_args ({exc})") from None
        raise BlursynthError(f"model {name!r}: {exc} (check --model-arg)") from None


def load_weights(model: torch.nn.Module, state: dict, name: str, path: str | Path) -> None:
    """Load ``state`` (checked by :func:`check_fields`) into the fresh ``model`` of model ``name``.

    The model's own ``load_state_dict`` runs first, because a model may shape
    itself from the weights (Blur2Video builds one branch per latent frame it
    finds); when the names or shapes do not fit, the model, which is new and
    then dropped, is compared with ``state`` for a one-line message instead
    of torch's list of every mismatch.

    Raises
    ------
    BlursynthError
        Weights missing, unexpected or of another shape, naming the first of each.
    """
    try:
        model.load_state_dict(state)
        return
    except RuntimeError:
        pass
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in state if k in expected and tuple(state[k].shape) != tuple(expected[k].shape)]
    faults = []
    if missing:
        faults.append(f"{len(missing)} weights missing (e.g. {missing[0]!r})")
    if unexpected:
        faults.append(f"{len(unexpected)} weights it does not have (e.g. {unexpected[0]!r})")
    if shapes:
        k = shapes[0]
        faults.append(f"{len(shapes)} of another shape (e.g. {k!r}: {list(state[k].shape)}, "
                      f"the model's {list(expected[k].shape)})")
    raise BlursynthError(f"{path}: its weights do not fit model {name!r} with its model_args: "
                         f"{'; '.join(faults) or 'load_state_dict refused them'}")


def model_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a run folder or checkpoint file.

    Every check comes first (:func:`load_checkpoint`: the file, its fields and
    finite weights; :func:`load_weights`: names and shapes), so a checkpoint
    of another model, of other shapes or with NaN weights is one line.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, on the CPU.
    checkpoint : dict
        The loaded checkpoint.
    """
    ckpt = load_checkpoint(path)
    where = Path(path)
    model = build_model(ckpt["model"], ckpt["model_args"], where=where)
    load_weights(model, ckpt["state_dict"], ckpt["model"], where)
    return model.eval(), ckpt
