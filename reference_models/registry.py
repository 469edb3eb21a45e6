"""Model registry: a plain dict from name to constructor, filled by a decorator and found by a scan.

Adding a reference model means adding one file that defines the model class
(its ``task`` class attribute holds its :class:`~reference_models.task.ModelTask`),
a factory and a few ``@register_model`` constructors, each annotated with the
class it returns (timm's ``_registry.py`` is the model for this). The registry
finds model files itself, the first time it is asked (BasicSR scans for
``*_arch.py`` the same way):

* every module of the ``reference_models`` folder with a line that starts with
  ``@register_model`` (so the package's ``__init__`` names no model);
* every entry of the ``BLURSYNTH_MODELS`` environment variable (separated by
  ``os.pathsep``): a ``.py`` file, or the dotted name of an importable module;
* every entry point of the group ``blursynth.models`` of an installed package.

Examples
--------
>>> from reference_models import create_model, list_models, task_for
>>> "dtb" in list_models()
True
>>> task_for("dtb").inference
'online'
>>> model = create_model("dtb", blocks=2)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import typing
from pathlib import Path
from typing import Callable, Sequence

import torch.nn as nn

from blursynth.errors import BlursynthError
from reference_models.task import ModelTask, check_task

__all__ = ["ENTRY_POINTS", "MODELS_ENV", "create_model", "is_model", "list_models", "model_for_data",
           "register_model", "task_for"]

MODELS_ENV = "BLURSYNTH_MODELS"
ENTRY_POINTS = "blursynth.models"
_PACKAGE = Path(__file__).resolve().parent
_REGISTERS = re.compile(r"^@register_model\b", re.MULTILINE)

_model_entrypoints: dict[str, Callable[..., nn.Module]] = {}
_found = False


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register ``fn`` under its own name (``def dtb(**kwargs) -> DTBNet`` -> ``"dtb"``).

    ``fn``'s return annotation names the model class, whose ``task`` class
    attribute is the model's contract (:func:`task_for`).
    """
    name = fn.__name__
    if name in _model_entrypoints:
        raise ValueError(f"model {name!r} is registered twice ({fn.__module__} and "
                         f"{_model_entrypoints[name].__module__})")
    _model_entrypoints[name] = fn
    return fn


def _import_file(path: Path) -> None:
    """Import a model file given by its path, once (as module ``blursynth_models.<stem>``)."""
    name = f"blursynth_models.{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before it runs: multiprocessing and pickle find it by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def _find_models() -> None:
    """Import every model module (the package scan, ``BLURSYNTH_MODELS``, entry points), once."""
    global _found
    if _found:
        return
    _found = True  # model modules import this one: no second scan while they load
    for path in sorted(_PACKAGE.glob("*.py")):
        if _REGISTERS.search(path.read_text(encoding="utf-8")):
            importlib.import_module(f"reference_models.{path.stem}")
    for item in filter(None, (s.strip() for s in os.environ.get(MODELS_ENV, "").split(os.pathsep))):
        try:
            if item.endswith(".py"):
                path = Path(item).expanduser()
                if not path.is_file():
                    raise FileNotFoundError(f"no such file")
                _import_file(path.resolve())
            else:
                importlib.import_module(item)
        except Exception as exc:  # a user's file: one line naming it, not a traceback
            raise BlursynthError(f"{MODELS_ENV}: {item}: cannot load it ({type(exc).__name__}: {exc})") from None
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        try:
            entry.load()
        except Exception as exc:
            raise BlursynthError(f"entry point {entry.name} = {entry.value} (group {ENTRY_POINTS}): cannot load "
                                 f"it ({type(exc).__name__}: {exc})") from None


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _find_models()
    return sorted(_model_entrypoints)


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    _find_models()
    return name in _model_entrypoints


def _entrypoint(name: str) -> Callable[..., nn.Module]:
    _find_models()
    try:
        return _model_entrypoints[name]
    except KeyError:
        raise BlursynthError(
            f"model {name!r} is unknown; choose one of {', '.join(list_models())}") from None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` with constructor arguments ``kwargs``.

    Raises :class:`BlursynthError` naming the model for an unknown name, because
    the name usually comes from the command line.
    """
    return _entrypoint(name)(**kwargs)


def task_for(name: str) -> ModelTask:
    """The :class:`ModelTask` of the registered model ``name``, without building the model.

    It is the ``task`` class attribute of the class that the constructor's
    return annotation names (``def dtb(**kwargs) -> DTBNet``).

    Raises
    ------
    BlursynthError
        For an unknown name.
    ValueError
        When the constructor names no class with a consistent ModelTask
        (:func:`reference_models.task.check_task`).
    """
    fn = _entrypoint(name)
    where = f"model {name!r} ({fn.__module__}.{fn.__qualname__})"
    try:
        cls = typing.get_type_hints(fn).get("return")
    except Exception as exc:
        raise ValueError(f"{where}: its return annotation does not resolve ({exc})") from None
    if cls is None:
        raise ValueError(f"{where}: annotate the constructor with the model class it returns "
                         "(def name(**kwargs) -> MyNet), whose 'task' class attribute holds its ModelTask")
    return check_task(getattr(cls, "task", None), where)


def model_for_data(forms: Sequence[str]) -> str | None:
    """The model that validates data of ``forms`` (tried in order), or None.

    For the first form that some family validates (:attr:`ModelTask.validates`),
    the family with the highest priority wins, then the validator's name in
    alphabetical order; the answer is the family's :attr:`ModelTask.validator`.
    """
    validators = {}
    for name in list_models():
        task = task_for(name)
        if task.validator == name:
            validators[name] = task
    for form in forms:
        ranked = sorted((-task.validates[form], name) for name, task in validators.items() if form in task.validates)
        if ranked:
            return ranked[0][1]
    return None
