"""Pieces shared by every command: error handling, recipes, common options.

A recipe (``--recipe FILE.toml``) fills option defaults through click's
``default_map``; flags given on the command line win. Top-level keys are option
names (``seq-len`` or ``seq_len``); an optional ``[recipe]`` table documents the
source (``paper``, ``notes``, ``assumed``) and is not applied. Recipes for the
training commands may hold a ``[train]`` table (training options, as top-level
keys) and a ``[model]`` table (model constructor arguments; ``--model-arg``
flags win key by key).
"""

from __future__ import annotations

import math
import signal
import warnings
from pathlib import Path

import click

from blursynth.errors import BlursynthError, BlursynthWarning, InterruptedRun, user_message
from blursynth.jsondoc import load_toml
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


# Options that say where to write and how to run: a recipe sets content only,
# so that a downloaded recipe cannot choose what gets deleted or where.
RUN_KEYS = frozenset({"out", "overwrite", "workers", "backend", "scheduler", "skip_bad", "quiet",
                      "max_megapixels"})


def load_recipe(path: str | Path, command: click.Command) -> dict:
    """The option defaults a recipe gives ``command``, checked.

    Parameters
    ----------
    path : str or Path
        A UTF-8 TOML file.
    command : click.Command
        The command it is for.

    Returns
    -------
    dict
        Option name (``seq_len``) -> value, for click's ``default_map``.

    Raises
    ------
    BlursynthError
        A file that is not a regular file of at most 1 MiB, not UTF-8 TOML
        (:func:`blursynth.jsondoc.load_toml`: nesting and ``inf``/``nan``
        refused too), an unknown option, an option that says
        where or how to run (:data:`RUN_KEYS`), one option given twice
        (``seq-len`` and ``seq_len``), or a value of the wrong type
        (``tau = true``, ``tau = 7.5``).
    """
    path = Path(path)
    data = load_toml(path, "recipe", name=f"--recipe {path}")  # a regular file, capped, finite, not too deep
    data.pop("recipe", None)
    names = {p.name for p in command.params if isinstance(p, click.Option)}
    if isinstance(data.get("train"), dict):  # [train]: training options, as top-level keys
        data.update(data.pop("train"))
    if isinstance(data.get("model"), dict):  # [model]: model constructor arguments (_apply_recipe)
        if "model_arg" not in names:
            raise BlursynthError(f"--recipe {path}: a [model] table is for commands that train a model, "
                                 f"not '{command.name}'")
        data.pop("model")
    params = {p.name: p for p in command.params if isinstance(p, click.Option)}
    defaults, spelled = {}, {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name in RUN_KEYS:
            raise BlursynthError(f"--recipe {path}: {key!r} says where or how to run; a recipe sets what to "
                                 "make only (give it on the command line)")
        if name not in names or name == "recipe":
            raise BlursynthError(f"--recipe {path}: unknown option {key!r} for '{command.name}'")
        if name in spelled:
            raise BlursynthError(f"--recipe {path}: {spelled[name]!r} and {key!r} are the same option; keep one")
        spelled[name] = key
        if name in params:
            _check_recipe_value(path, key, value, params[name])
        defaults[name] = value
    return defaults


def _check_recipe_value(path: Path, key: str, value, param: click.Option) -> None:
    """Refuse a recipe value whose TOML type does not fit the option (click would
    otherwise turn ``true`` into 1 and ``7.5`` into 7 without a word)."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    def is_number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def is_list_of(v, test):
        return isinstance(v, list) and bool(v) and all(test(x) for x in v)

    kind = param.type
    if param.is_flag:
        ok, expected = isinstance(value, bool), "true or false"
    elif param.multiple:
        ok, expected = isinstance(value, str) or is_list_of(value, lambda x: isinstance(x, str)), \
            "a string or a list of strings"
    elif isinstance(kind, NumberList):
        test = is_int if kind.cast is int else is_number
        noun = "integer" if kind.cast is int else "number"
        if isinstance(value, str):  # "7,9,11" is a list too
            try:
                ok = bool(kind.convert(value, param, None))
            except click.BadParameter:
                ok = False
        else:
            ok = test(value) or is_list_of(value, test)
        expected = f"an {noun} or a list of {noun}s"
    elif isinstance(kind, Size):
        ok = isinstance(value, str) or (is_list_of(value, is_int) and len(value) == 2)
        expected = f"a string {kind.name} (e.g. \"960x540\")"
    elif isinstance(kind, (click.types.IntParamType, click.IntRange)):
        ok, expected = is_int(value), "an integer"
    elif isinstance(kind, (click.types.FloatParamType, click.FloatRange)):
        ok, expected = is_number(value), "a number"
    elif isinstance(kind, click.types.BoolParamType):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(kind, (click.types.StringParamType, click.Choice, click.Path)):
        ok, expected = isinstance(value, str), "a string"
    else:  # a command's own type (e.g. --T auto|tau|LIST) checks strings and integers itself
        items = value if isinstance(value, list) else [value]
        ok = all(isinstance(v, str) or is_int(v) for v in items)
        expected = f"a value of the form {kind.name}"
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
            recipe = load_recipe(value, ctx.command)
        except BlursynthError as exc:
            raise click.BadParameter(str(exc).removeprefix("--recipe "), param_hint="--recipe") from None
        ctx.default_map = {**(ctx.default_map or {}), **recipe}
        tables = {}
        model = load_toml(value, "recipe").get("model")  # read and checked by load_recipe above
        if isinstance(model, dict):
            tables["model"] = {k.replace("-", "_"): v for k, v in model.items()}
        ctx.meta["blursynth.recipe_tables"] = tables
    return value


# The recipes installed with the package (blursynth/recipes/*.toml; recipes/ in a checkout links here).
RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def builtin_recipes() -> dict[str, Path]:
    """Name (file name without ``.toml``) -> path of every recipe installed with blursynth."""
    return {p.stem: p for p in sorted(RECIPES.glob("*.toml"))}


class RecipeType(click.ParamType):
    """``--recipe``: a TOML file, or the name of an installed recipe (``kim2017_dtb``)."""

    name = "NAME|FILE"

    def convert(self, value, param, ctx):
        path = Path(value)
        if path.exists() and not path.is_dir():  # a FIFO or a device too: load_recipe names what it is
            return str(path)
        found = builtin_recipes().get(path.name.removesuffix(".toml")) if len(path.parts) <= 2 else None
        if found is not None and (len(path.parts) == 1 or path.parent.name == "recipes"):
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
    from blursynth.run.engine import RunOptions
    keys = ("out", "shard_size", "compression", "workers", "backend", "scheduler", "overwrite",
            "skip_bad", "quiet")
    return RunOptions(**{k: kw.pop(k) for k in keys}, max_pixels=pixel_limit(kw.pop("max_megapixels")))


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


def report(manifest, out) -> None:
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
