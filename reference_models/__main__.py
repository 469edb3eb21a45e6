"""Ask the model registry from a shell script: ``python -m reference_models QUESTION ...``.

The training scripts (``gpu/train_reference.sh``, ``reference_models/weights/train.sh``)
read every per-model setting here, so that they name no model:

``list``
    The registered models, one per line (``--validators``: only the model of
    each family that ``validate`` may pick).
``show MODEL FIELD``
    One field of the model's :class:`~reference_models.task.ModelTask`
    (``learns_from``, ``inference``, ``validator``, …); a dict or list as JSON.
``recipe MODEL [--preset P]``
    The path of the ``blursynth panorama`` recipe that makes the training data
    of preset ``P`` (default ``paper``) for the model
    (:attr:`~reference_models.task.ModelTask.data_recipes`).

A bad model name or field is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from blursynth.errors import BlursynthError
from reference_models.registry import list_models, task_for
from reference_models.task import PRESETS

PACKAGE = Path(__file__).resolve().parent


def recipe_path(model: str, preset: str = "paper") -> Path:
    """The recipe file of ``model``'s preset ``preset`` data (an installed recipe, or a file of this folder).

    Raises
    ------
    BlursynthError
        When the task names no recipe for the preset, or names one that does not exist.
    """
    recipes = task_for(model).data_recipes
    if preset not in recipes:
        raise BlursynthError(f"model {model}: its task names no data recipe for the {preset} preset "
                             f"(ModelTask.data_recipes has {', '.join(sorted(recipes)) or 'none'})")
    value = recipes[preset]
    if value.endswith(".toml"):
        path = PACKAGE / value
    else:
        from blursynth.recipes import builtin_recipes  # the one owner of installed recipe names

        path = builtin_recipes().get(value, PACKAGE / f"{value}.toml")
    if not path.is_file():
        raise BlursynthError(f"model {model}: data recipe {value!r} of the {preset} preset does not exist ({path})")
    return path


def _field(model: str, field: str) -> str:
    task = task_for(model)
    if field.startswith("_") or not hasattr(task, field) or callable(getattr(task, field)):
        raise BlursynthError(f"model {model}: its task has no field {field!r}")
    value = getattr(task, field)
    return json.dumps(value) if isinstance(value, (dict, list, tuple)) else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="question", required=True)
    listing = sub.add_parser("list", help="registered models")
    listing.add_argument("--validators", action="store_true", help="only the models validate may pick")
    show = sub.add_parser("show", help="one field of a model's task")
    show.add_argument("model")
    show.add_argument("field")
    recipe = sub.add_parser("recipe", help="the panorama recipe of a preset's training data")
    recipe.add_argument("model")
    recipe.add_argument("--preset", choices=PRESETS, default="paper")
    args = parser.parse_args(argv)
    try:
        if args.question == "list":
            names = list_models()
            print("\n".join(n for n in names if not args.validators or task_for(n).validator == n))
        elif args.question == "show":
            print(_field(args.model, args.field))
        else:
            print(recipe_path(args.model, args.preset))
    except BlursynthError as exc:
        print(f"python -m reference_models: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
