"""Recipes: a paper's settings as option defaults, read once, for the commands and the Python API.

A recipe is a UTF-8 TOML file. Top-level keys are option names (``seq-len`` or
``seq_len``); an optional ``[recipe]`` table documents the source (``paper``,
``notes``, ``assumed``) and is not applied. Recipes for the training commands
may hold a ``[train]`` table (training options, as top-level keys) and a
``[model]`` table (model constructor arguments). The recipes installed with
blursynth are the ``*.toml`` files beside this module (package data).

What a recipe may not say: where to write or how to run (``out``, ``workers``,
... :func:`blursynth.run.options.where_and_how`), so that a downloaded recipe
cannot choose what gets deleted or where. Values given explicitly win over the
recipe's: flags on the command line (click's ``default_map``), keyword
arguments of :func:`blursynth.make_highspeed` / :func:`blursynth.make_panorama`
(:func:`config_fields`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from blursynth.errors import BlursynthError
from blursynth.jsondoc import load_toml
from blursynth.run.options import identity, where_and_how

# The recipes installed with the package (recipes/ in a checkout links here).
RECIPES = Path(__file__).resolve().parent
# Options that say where to write and how to run, refused in a recipe.
RUN_KEYS = where_and_how()


def builtin_recipes() -> dict[str, Path]:
    """Name (file name without ``.toml``) -> path of every recipe installed with blursynth."""
    return {p.stem: p for p in sorted(RECIPES.glob("*.toml"))}


def find_recipe(value: str | Path) -> Path | None:
    """The file a ``--recipe`` value names: an existing file (not a folder), else an installed
    recipe given by name (``kim2017_dtb``, ``kim2017_dtb.toml`` or ``recipes/kim2017_dtb``);
    None when it is neither."""
    path = Path(value)
    if path.exists() and not path.is_dir():  # a FIFO or a device too: load_recipe names what it is
        return path
    found = builtin_recipes().get(path.name.removesuffix(".toml")) if len(path.parts) <= 2 else None
    if found is not None and (len(path.parts) == 1 or path.parent.name == "recipes"):
        return found
    return None


@dataclass(frozen=True)
class Recipe:
    """A recipe file, read and parsed once.

    Attributes
    ----------
    path : Path
        The file.
    options : dict
        Option name, underscored (``seq_len``) -> TOML value: the top-level keys
        and those of ``[train]``.
    spelled : dict
        Option name -> the key as the file spells it (``seq-len``), for messages.
    model : dict, optional
        The ``[model]`` table, keys underscored; None without one.
    """

    path: Path
    options: dict = field(default_factory=dict)
    spelled: dict = field(default_factory=dict)
    model: dict | None = None


def load_recipe(path: str | Path) -> Recipe:
    """Read a recipe: one parse of the TOML, keys underscored, checks common to every use.

    Parameters
    ----------
    path : str or Path
        A UTF-8 TOML file.

    Returns
    -------
    Recipe

    Raises
    ------
    BlursynthError
        A file that is not a regular file of at most 1 MiB, not UTF-8 TOML
        (:func:`blursynth.jsondoc.load_toml`: nesting and ``inf``/``nan``
        refused too), an option that says where or how to run
        (:data:`RUN_KEYS`), or one option given twice (``seq-len`` and
        ``seq_len``).
    """
    path = Path(path)
    data = load_toml(path, "recipe", name=f"--recipe {path}")  # a regular file, capped, finite, not too deep
    data.pop("recipe", None)
    if isinstance(data.get("train"), dict):  # [train]: training options, as top-level keys
        data.update(data.pop("train"))
    model = data.pop("model") if isinstance(data.get("model"), dict) else None
    options, spelled = {}, {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in RUN_KEYS:
            raise BlursynthError(f"--recipe {path}: {key!r} says where or how to run; a recipe sets what to "
                                 "make only (give it on the command line)")
        if name in spelled:
            raise BlursynthError(f"--recipe {path}: {spelled[name]!r} and {key!r} are the same option; keep one")
        spelled[name] = key
        options[name] = value
    if model is not None:
        model = {k.replace("-", "_"): v for k, v in model.items()}
    return Recipe(path, options, spelled, model)


def _size(text: str, where: str, partial: bool) -> tuple:
    """``"960x540"`` -> (960, 540); with ``partial`` ``"960x"`` -> (960, None), ``"x540"`` -> (None, 540)."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        size = tuple(int(v) if v else None for v in parts)
    except ValueError:
        raise BlursynthError(f"{where} = {text!r}: expected a string WxH (e.g. \"960x540\")") from None
    if None in size and not (partial and size != (None, None)):
        raise BlursynthError(f"{where} = {text!r}: expected a string WxH (e.g. \"960x540\")")
    return size


def _number_list(value, cast, where: str) -> tuple:
    """A number, a TOML list of numbers, or ``"7,9,11"`` -> tuple of ``cast``."""
    if isinstance(value, str):
        items = [v for v in value.replace(" ", "").split(",") if v]
    else:
        items = value if isinstance(value, list) else [value]
    try:
        if not items or any(isinstance(v, bool) or (cast is int and isinstance(v, float)) for v in items):
            raise ValueError
        return tuple(cast(v) for v in items)
    except (TypeError, ValueError):
        noun = "integer" if cast is int else "number"
        raise BlursynthError(f"{where} = {value!r}: expected an {noun} or a list of {noun}s") from None


def _field_value(annotation: str, value, where: str):
    """A TOML value as the config field of type ``annotation`` holds it (as the command's
    option types convert it)."""
    if annotation.startswith("tuple[int | None, int | None]"):  # --resize WxH | Wx | xH
        return _size(value, where, partial=True) if isinstance(value, str) else tuple(value)
    if annotation.startswith("tuple[int, int]"):  # --size WxH
        return _size(value, where, partial=False) if isinstance(value, str) else tuple(value)
    if annotation.startswith("str | tuple[int, ...]"):  # --T auto | tau | LIST
        return value if value in ("auto", "tau") else _number_list(value, int, where)
    if annotation.startswith("tuple[int, ...]"):
        return _number_list(value, int, where)
    if annotation.startswith("tuple[float, ...]"):
        return _number_list(value, float, where)
    if annotation.startswith("tuple[str, ...]"):  # --src
        return (value,) if isinstance(value, str) else tuple(value)
    if annotation.startswith("float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # fov = 60 is 60.0, as the flag gives it (the manifest records the config)
    return value


def config_fields(recipe: Recipe, config_cls, given: dict) -> dict:
    """The fields of ``config_cls`` a recipe sets and ``given`` does not (given values win).

    Parameters
    ----------
    recipe : Recipe
    config_cls : type
        A pipeline config dataclass (:class:`~blursynth.highspeed.HighspeedConfig`,
        :class:`~blursynth.panorama.PanoramaConfig`).
    given : dict
        The keyword arguments given explicitly.

    Returns
    -------
    dict
        Field name -> value, converted as the command's options convert them
        (``"960x540"`` -> ``(960, 540)``, ``[7, 9]`` -> ``(7, 9)``).

    Raises
    ------
    BlursynthError
        A recipe key that is not a field of ``config_cls`` or a run option of
        the dataset's identity (a recipe for another command), or a value of the
        wrong form.
    """
    types = {f.name: str(f.type) for f in dataclasses.fields(config_cls)}
    out = {}
    for name, value in recipe.options.items():
        key = recipe.spelled[name]
        if name not in types:
            if name in identity():  # run options a recipe may set (shard_size, compression)
                if name not in given:
                    out[name] = value
                continue
            raise BlursynthError(f"--recipe {recipe.path}: unknown option {key!r} for {config_cls.__name__} "
                                 "(a recipe for another command?)")
        if name not in given:
            out[name] = _field_value(types[name], value, f"--recipe {recipe.path}: {key}")
    return out
