"""Pieces shared by every command: error handling, recipes, common options.

A recipe (``--recipe FILE.toml``, read by :mod:`blursynth.recipes`) fills option
defaults through click's ``default_map``; flags given on the command line win.
Here a recipe's keys are checked against the command's options and their types
(:func:`load_recipe`); ``--model-arg`` flags win over its ``[model]`` table key
by key.
"""

from __future__ import annotations

import math
import signal
import warnings
from pathlib import Path

import click

from blursynth.errors import BlursynthError, BlursynthWarning, InterruptedRun, user_message
from blursynth.recipes import RECIPES, RUN_KEYS  # noqa: F401  (named here before blursynth.recipes)
from blursynth.recipes import Recipe, builtin_recipes, find_recipe
from blursynth.recipes import load_recipe as read_recipe
from blursynth.run.options import option_names
from blursynth.sources.headers import FRAME_PIXELS, PANORAMA_PIXELS

INTERRUPTED = "blursynth: interrupted; re-run the same command to resume"


class Group(click.Group):
    """A click group whose errors are one line: ``blursynth: error: ...``.

    A :class:`BlursynthError` exits with status 1; a usage error found by
    click (a bad option value, an unknown option or command) exits with 2, as
    click's own handler would, but on one line that names the help to read.
    Each :class:`~blursynth.errors.BlursynthWarning` is printed as one line.
    Ctrl-C (SIGINT) or SIGTERM prints ``blursynth: interrupted; re-run the
    same command to resume`` and exits with 128 + the signal number.
    """

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.simplefilter("default", BlursynthWarning)  # each distinct message once
            warnings.showwarning = _show_note
            try:
                return super().invoke(ctx)
            except InterruptedRun as exc:
                click.echo(f"blursynth: {exc}", err=True)  # INTERRUPTED, or what the run kept
                ctx.exit(128 + exc.signal_number)
            except KeyboardInterrupt:
                click.echo(INTERRUPTED, err=True)
                ctx.exit(128 + signal.SIGINT)
            except click.UsageError as exc:
                where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
                click.echo(f"blursynth: error: {exc.format_message().rstrip('.')} (see '{where} --help')", err=True)
                ctx.exit(exc.exit_code)
            except (BlursynthError, RuntimeError) as exc:
                # a user error, also as torch's DataLoader re-raises one from its workers
                message = user_message(exc)
                if message is None:
                    raise
                click.echo(f"blursynth: error: {message}", err=True)
                ctx.exit(1)


def _show_note(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, BlursynthWarning):
        click.echo(f"blursynth: {message}", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line).rstrip(), err=True)


def load_recipe(path: str | Path, command: click.Command) -> dict:
    """The option defaults a recipe gives ``command``, checked.

    Parameters
    ----------
    path : str or Path
        A UTF-8 TOML file (read by :func:`blursynth.recipes.load_recipe`).
    command : click.Command
        The command it is for.

    Returns
    -------
    dict
        Option name (``seq_len``) -> value, for click's ``default_map``.

    Raises
    ------
    BlursynthError
        What :func:`blursynth.recipes.load_recipe` refuses, an unknown option,
        a ``[model]`` table for a command that trains no model, or a value of
        the wrong type (``tau = true``, ``tau = 7.5``).
    """
    return recipe_defaults(read_recipe(path), command)


def recipe_defaults(recipe: Recipe, command: click.Command) -> dict:
    """The option defaults ``recipe`` gives ``command`` (see :func:`load_recipe`)."""
    names = {p.name for p in command.params if isinstance(p, click.Option)}
    if recipe.model is not None and "model_arg" not in names:
        raise BlursynthError(f"--recipe {recipe.path}: a [model] table is for commands that train a model, "
                             f"not '{command.name}'")
    params = {p.name: p for p in command.params if isinstance(p, click.Option)}
    for name, value in recipe.options.items():
        if name not in names or name == "recipe":
            raise BlursynthError(f"--recipe {recipe.path}: unknown option {recipe.spelled[name]!r} "
                                 f"for '{command.name}'")
        _check_recipe_value(recipe.path, recipe.spelled[name], value, params[name])
    return dict(recipe.options)


def _check_recipe_value(path: Path, key: str, value, param: click.Option) -> None:
    """Refuse a recipe value whose TOML type does not fit the option (click would
    otherwise turn ``true`` into 1 and ``7.5`` into 7 without a word)."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def is_number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def is_list_of(v, test):
        return isinstance(v, list) and bool(v) and all(test(x) for x in v)

    option_type = param.type
    if param.is_flag:
        ok, expected = isinstance(value, bool), "true or false"
    elif param.multiple:
        ok, expected = isinstance(value, str) or is_list_of(value, lambda x: isinstance(x, str)), \
            "a string or a list of strings"
    elif isinstance(option_type, NumberList):
        test = is_int if option_type.cast is int else is_number
        noun = "integer" if option_type.cast is int else "number"
        if isinstance(value, str):  # "7,9,11" is a list too
            try:
                ok = bool(option_type.convert(value, param, None))
            except click.BadParameter:
                ok = False
        else:
            ok = test(value) or is_list_of(value, test)
        expected = f"an {noun} or a list of {noun}s"
    elif isinstance(option_type, Size):
        ok = isinstance(value, str) or (is_list_of(value, is_int) and len(value) == 2)
        expected = f"a string {option_type.name} (e.g. \"960x540\")"
    elif isinstance(option_type, (click.types.IntParamType, click.IntRange)):
        ok, expected = is_int(value), "an integer"
    elif isinstance(option_type, (click.types.FloatParamType, click.FloatRange)):
        ok, expected = is_number(value), "a number"
    elif isinstance(option_type, click.types.BoolParamType):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(option_type, (click.types.StringParamType, click.Choice, click.Path)):
        ok, expected = isinstance(value, str), "a string"
    else:  # a command's own type (e.g. --T auto|tau|LIST) checks strings and integers itself
        items = value if isinstance(value, list) else [value]
        ok = all(isinstance(v, str) or is_int(v) for v in items)
        expected = f"a value of the form {option_type.name}"
    if not ok:
        raise BlursynthError(f"--recipe {path}: {key} = {_toml(value)}: expected {expected}")


def _toml(value) -> str:
    """A value as TOML writes it (``true``, ``7.5``, ``"x"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _apply_recipe(ctx: click.Context, _param, value):
    if value:
        try:
            recipe = read_recipe(value)  # parsed once: the options and the [model] table
            defaults = recipe_defaults(recipe, ctx.command)
        except BlursynthError as exc:
            raise click.BadParameter(str(exc).removeprefix("--recipe "), param_hint="--recipe") from None
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
        ctx.meta["blursynth.recipe_tables"] = {"model": recipe.model} if recipe.model is not None else {}
    return value


class RecipeType(click.ParamType):
    """``--recipe``: a TOML file, or the name of an installed recipe (``kim2017_dtb``)."""

    name = "NAME|FILE"

    def convert(self, value, param, ctx):
        found = find_recipe(value)
        if found is not None:
            return str(found)
        self.fail(f"{value}: no such file and no installed recipe of that name "
                  f"(installed: {', '.join(builtin_recipes())}; 'blursynth recipes' describes them)", param, ctx)


recipe_option = click.option(
    "--recipe", type=RecipeType(), is_eager=True, expose_value=False, callback=_apply_recipe,
    help="A recipe: the name of an installed one (see 'blursynth recipes') or a TOML file of option "
         "defaults; flags win.",
)


class NumberList(click.ParamType):
    """``7,9,11`` (or a TOML list) -> tuple of numbers."""

    name = "LIST"

    def __init__(self, cast=int):
        self.cast = cast

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            items = list(value)
        elif isinstance(value, (int, float)):
            items = [value]
        else:
            items = [v for v in str(value).replace(" ", "").split(",") if v]
        try:
            out = tuple(self.cast(v) for v in items)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a comma-separated list of numbers", param, ctx)
        if not out:
            self.fail("the list is empty", param, ctx)
        return out


class Size(click.ParamType):
    """``WxH`` -> (W, H); with ``partial``, ``960x`` -> (960, None) and ``x540`` -> (None, 540)
    (the missing side follows from each source's aspect ratio)."""

    name = "WxH"

    def __init__(self, partial: bool = False):
        self.partial = partial
        self.name = "WxH|Wx|xH" if partial else "WxH"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, tuple):
            return value
        example = "960x540, 960x or x540" if self.partial else "960x540"
        parts = str(value).lower().replace(" ", "").split("x")
        try:
            if len(parts) != 2:
                raise ValueError
            a, b = (int(v) if v else None for v in parts)
            if (a is None or b is None) and not (self.partial and (a, b) != (None, None)):
                raise ValueError
        except ValueError:
            self.fail(f"{value!r} is not of the form {self.name} (e.g. {example})", param, ctx)
        if (a is not None and a < 1) or (b is not None and b < 1):
            self.fail(f"{value!r}: sizes must be positive", param, ctx)
        return (a, b)


def realism_options(func):
    """Realism options shared by the synthesis commands (:mod:`blursynth.realism`, docs/realism.md)."""
    decorators = [
        click.option("--noise-shot", type=NumberList(float), default=None, metavar="A[,B]",
                     help="Shot-noise coefficient: noise variance shot*x + read^2 in linear light "
                          "(one value fixed, two a uniform range)."),
        click.option("--noise-read", type=NumberList(float), default=None, metavar="A[,B]",
                     help="Read-noise standard deviation, linear units (one value fixed, two a uniform range)."),
        click.option("--saturation", type=NumberList(float), default=None, metavar="A,B",
                     help="8-bit sources: add the clip mask averaged over the exposure, scaled by U(A,B) "
                          "(RSBlur), before clipping."),
        click.option("--jpeg", type=NumberList(int), default=None, metavar="Q1,Q2",
                     help="Re-encode the blurred image as JPEG at a quality drawn from Q1..Q2."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def run_options(command: str):
    """Options that say where and how to run, shared by the synthesis commands.

    Parameters
    ----------
    command : str
        The command's name (its default ``--out`` is ``./COMMAND-out``).
    """
    decorators = [
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     show_default=f"./{command}-out",
                     help="Output dataset folder (manifest.json + shard-*.h5); re-running resumes there."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Seed of the whole run (0 or more)."),
        click.option("--shard-size", type=int, default=32, show_default=True, help="Samples per shard file."),
        click.option("--compression", type=click.Choice(["none", "lzf", "gzip"]), default="none",
                     show_default=True, help="HDF5 filter for frame data (see docs/format.md)."),
        click.option("--workers", type=int, default=None, help="Worker processes (default: all cores)."),
        click.option("--backend", type=click.Choice(["loky", "dask"]), default="loky", show_default=True,
                     help="joblib backend: local processes, or an existing Dask cluster."),
        click.option("--scheduler", default=None, help="Dask scheduler address for --backend dask."),
        click.option("--overwrite", is_flag=True, help="Replace a different dataset already in --out."),
        click.option("--skip-bad", is_flag=True, help="Skip unusable sources and list them in manifest.json."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
        max_megapixels_option(FRAME_PIXELS if command == "highspeed" else PANORAMA_PIXELS),
    ]

    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def make_run_options(kw: dict):
    """Pop the run options out of a command's keyword arguments (no ``--out``: the
    engine's default folder, :func:`blursynth.run.engine.default_out`)."""
    from blursynth.run.options import RunOptions
    # the flags named as the fields they give; --max-megapixels gives max_pixels, in pixels
    same = [name for name, option in option_names().items() if option == name]
    return RunOptions(**{k: kw.pop(k) for k in same}, max_pixels=pixel_limit(kw.pop("max_megapixels")))


def max_megapixels_option(default: int):
    """``--max-megapixels``: the pixel limit of a source image's header (default ``default`` pixels)."""
    return click.option(
        "--max-megapixels", type=float, default=None, metavar="MP", show_default=f"{default / 1e6:g} megapixels",
        help="Refuse a source image whose header declares more megapixels, before any pixel is decoded "
             "(a small file can declare a huge image); raise it for real images that large.")


def pixel_limit(megapixels: float | None) -> int | None:
    """``--max-megapixels`` in pixels (None: the command's default).

    Raises
    ------
    BlursynthError
        Not a positive, finite number.
    """
    if megapixels is None:
        return None
    if not (math.isfinite(megapixels) and megapixels > 0):
        raise BlursynthError(f"--max-megapixels {megapixels:g}: must be a positive number")
    return max(1, int(megapixels * 1e6))


def summarize_run(manifest, out) -> None:
    """The summary line after a run, after any note that must be repeated at the end."""
    from blursynth.budget import count
    from blursynth.run.engine import default_out

    out = default_out(manifest.kind) if out is None else out
    fallback = manifest.config.get("src_fallback")
    if fallback:
        click.echo(f"blursynth: {fallback['note']}", err=True)
    written = sum(s["samples"] for s in manifest.shards)
    msg = f"{count(written, 'sample')} in {count(len(manifest.shards), 'shard')} -> {out}/"
    if manifest.skipped:
        msg += f" ({len(manifest.skipped)} skipped, listed in manifest.json)"
    size = sum((Path(out) / s["file"]).stat().st_size for s in manifest.shards if (Path(out) / s["file"]).exists())
    msg += f", {size / 1e9:.2f} GB" if size >= 1e8 else f", {size / 1e6:.1f} MB"
    click.echo(msg, err=True)
