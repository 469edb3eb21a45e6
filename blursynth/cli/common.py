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

import tomllib
import warnings
from pathlib import Path

import click

from blursynth.errors import BlursynthError, BlursynthWarning


class Group(click.Group):
    """A click group whose errors are one line: ``blursynth: error: ...``.

    A :class:`BlursynthError` exits with status 1; a usage error found by
    click (a bad option value, an unknown option or command) exits with 2, as
    click's own handler would, but on one line that names the help to read.
    Each :class:`~blursynth.errors.BlursynthWarning` is printed as one line.
    """

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.simplefilter("default", BlursynthWarning)  # each distinct message once
            warnings.showwarning = _show_note
            try:
                return super().invoke(ctx)
            except BlursynthError as exc:
                click.echo(f"blursynth: error: {exc}", err=True)
                ctx.exit(1)
            except click.UsageError as exc:
                where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
                click.echo(f"blursynth: error: {exc.format_message().rstrip('.')} (see '{where} --help')", err=True)
                ctx.exit(exc.exit_code)


def _show_note(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, BlursynthWarning):
        click.echo(f"blursynth: {message}", err=True)
    else:
        click.echo(warnings.formatwarning(message, category, filename, lineno, line).rstrip(), err=True)


def load_recipe(path: str | Path, command: click.Command) -> dict:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise BlursynthError(f"--recipe {path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise BlursynthError(f"--recipe {path}: not valid TOML ({exc})") from None
    data.pop("recipe", None)
    names = {p.name for p in command.params if isinstance(p, click.Option)}
    if isinstance(data.get("train"), dict):  # [train]: training options, as top-level keys
        data.update(data.pop("train"))
    if isinstance(data.get("model"), dict):  # [model]: model constructor arguments (_apply_recipe)
        if "model_arg" not in names:
            raise BlursynthError(f"--recipe {path}: a [model] table is for commands that train a model, "
                                 f"not '{command.name}'")
        data.pop("model")
    defaults = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in names or name == "recipe":
            raise BlursynthError(f"--recipe {path}: unknown option {key!r} for '{command.name}'")
        defaults[name] = value
    return defaults


def _apply_recipe(ctx: click.Context, _param, value):
    if value:
        try:
            recipe = load_recipe(value, ctx.command)
        except BlursynthError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[-1], param_hint="--recipe") from None
        ctx.default_map = {**(ctx.default_map or {}), **recipe}
        tables = {}
        try:
            model = tomllib.loads(Path(value).read_text()).get("model")
        except (OSError, ValueError):
            model = None
        if isinstance(model, dict):
            tables["model"] = {k.replace("-", "_"): v for k, v in model.items()}
        ctx.meta["blursynth.recipe_tables"] = tables
    return value


recipe_option = click.option(
    "--recipe", type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
    callback=_apply_recipe, help="TOML file of option defaults (see recipes/); flags win.",
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


def run_options(func):
    """Options that say where and how to run, shared by the synthesis commands."""
    decorators = [
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     show_default="./COMMAND-out, e.g. ./highspeed-out",
                     help="Output dataset folder (manifest.json + shard-*.h5); re-running resumes there."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of the whole run."),
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
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def make_run_options(kw: dict):
    """Pop the run options out of a command's keyword arguments (no ``--out``: the
    engine's default folder, :func:`blursynth.engine.default_out`)."""
    from blursynth.engine import RunOptions
    keys = ("out", "shard_size", "compression", "workers", "backend", "scheduler", "overwrite",
            "skip_bad", "quiet")
    return RunOptions(**{k: kw.pop(k) for k in keys})


def report(manifest, out) -> None:
    """The summary line after a run, after any note that must be repeated at the end."""
    from blursynth.engine import default_out

    out = default_out(manifest.kind) if out is None else out
    fallback = manifest.config.get("src_fallback")
    if fallback:
        click.echo(f"blursynth: {fallback['note']}", err=True)
    written = sum(s["samples"] for s in manifest.shards)
    msg = f"{written} samples in {len(manifest.shards)} shards -> {out}/"
    if manifest.skipped:
        msg += f" ({len(manifest.skipped)} skipped, listed in manifest.json)"
    size = sum((Path(out) / s["file"]).stat().st_size for s in manifest.shards if (Path(out) / s["file"]).exists())
    msg += f", {size / 1e9:.2f} GB" if size >= 1e8 else f", {size / 1e6:.1f} MB"
    click.echo(msg, err=True)
