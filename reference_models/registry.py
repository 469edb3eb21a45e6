"""Model registry: a plain dict from name to constructor, filled by a decorator.

Adding a reference model means adding one file that defines the model class, a
factory and a few ``@register_model`` constructors, and importing that file in
``reference_models/__init__.py`` (timm's ``_registry.py`` is the model for this).

Examples
--------
>>> from reference_models import create_model, list_models
>>> "dtb" in list_models()
True
>>> model = create_model("dtb", blocks=2)
"""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from blursynth.errors import BlursynthError

_model_entrypoints: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under its own name (``def dtb(**kwargs)`` -> ``"dtb"``)."""
    name = fn.__name__
    if name in _model_entrypoints:
        raise ValueError(f"model {name!r} is registered twice")
    _model_entrypoints[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_model_entrypoints)


def is_model(name: str) -> bool:
    return name in _model_entrypoints


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with constructor arguments ``kwargs``.

    Raises :class:`BlursynthError` naming the model for an unknown name, because
    the name usually comes from the command line.
    """
    try:
        entrypoint = _model_entrypoints[name]
    except KeyError:
        raise BlursynthError(
            f"model {name!r} is unknown; choose one of {', '.join(list_models())}") from None
    return entrypoint(**kwargs)
