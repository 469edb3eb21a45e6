"""Dataset utilities: ``sample``, ``verify``, ``info``, ``preview``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from blursynth.cli.root import main
from blursynth.cli.common import Size
from blursynth.errors import BlursynthError


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--clips", type=int, default=None,
              help="Write K different clips into the folder OUT (clip-00, clip-01, ...; seeds SEED..SEED+K-1), "
                   "each long enough for every installed recipe.")
@click.option("--frames", type=int, default=None, show_default="96; with --clips, enough for every recipe",
              help="Number of frames (at 240 fps).")
@click.option("--size", type=Size(), default="320x180", show_default=True, help="Frame size WxH.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the textures and motions.")
@click.option("--video", is_flag=True, help="Write a lossless FFV1 .avi instead of PNG frames.")
def sample(out, clips, frames, size, seed, video):
    """Write the built-in synthetic 240 fps clip (textured layers moving by sub-pixel steps), or
    with --clips K, K different clips to try every command and recipe on.

    \b
    Example:
      blursynth sample clips/ --clips 4
      blursynth highspeed --src clips/ --recipe kim2017_dtb --out dtb-train/
    """
    from blursynth.synthetic import write_sample_clip, write_sample_clips

    if out.exists() and any(out.iterdir() if out.is_dir() else [out]):
        raise BlursynthError(f"{out}: already exists and is not empty; choose another path")
    if clips is None:
        frames = 96 if frames is None else frames
        path = write_sample_clip(out, frames, size, seed, video=video)
        click.echo(f"wrote {frames} frames of {size[0]}x{size[1]} -> {path}", err=True)
        return
    frames = _frames_for_every_recipe() if frames is None else frames
    paths = write_sample_clips(out, clips, frames, size, seed, video=video)
    click.echo(f"wrote {len(paths)} clip{'s' if len(paths) != 1 else ''} of {frames} frames of "
               f"{size[0]}x{size[1]} -> {out}/ (--src {out}/ takes them all)", err=True)


def _frames_for_every_recipe() -> int:
    """Frames a clip needs so that every draw of every installed highspeed recipe (and of the
    command's defaults) gives it at least one sample (:func:`blursynth.highspeed.frames_needed`)."""
    from blursynth.cli.common import builtin_recipes, load_recipe
    from blursynth.highspeed import HighspeedConfig, frames_needed

    command = main.commands["highspeed"]
    params = {p.name: p for p in command.params if p.name in ("tau", "T", "seq_len")}
    need = 1
    for path in [None, *builtin_recipes().values()]:
        try:
            values = {} if path is None else load_recipe(path, command)
        except BlursynthError:  # a recipe of another command
            continue
        kw = {name: p.type.convert(values.get(name, p.default), p, None) for name, p in params.items()}
        need = max(need, frames_needed(HighspeedConfig(src=("-",), **kw)))
    return need


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--sources", is_flag=True,
              help="Also check that every source file still has the size and modification time it had when "
                   "the shard made from it was written.")
def verify(dataset, sources):
    """Check every shard of DATASET against the checksums in its manifest (and with --sources,
    the source files each shard was made from)."""
    from blursynth.dataset import verify as verify_dataset

    problems = verify_dataset(dataset, sources=sources)
    for problem in problems:
        click.echo(f"{dataset}: {problem}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{dataset}: ok", err=True)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
def info(dataset):
    """Summarize DATASET (JSON on stdout): kind, samples, frame sizes, disk use, config, and per
    source its samples, frame sizes, disk use and tau/T histogram."""
    from blursynth.dataset import describe

    click.echo(json.dumps(describe(dataset), indent=1))


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
@click.option("--n", type=int, default=4, show_default=True, help="Samples to show (one row each).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Which samples are drawn (across sources) and which frame of each sequence is shown.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out that 'blursynth preview' did not write (a dataset's own files never).")
def preview(dataset, out, n, seed, overwrite):
    """Contact sheet of DATASET: blurred, sharp and latent frames of a seeded draw of samples
    across its sources; each row names its source, sample and frame of the sequence."""
    from blursynth.curate.preview import contact_sheet

    contact_sheet(dataset, out, n, seed=seed, overwrite=overwrite)
    click.echo(f"wrote {out}", err=True)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="demo-out", show_default=True,
              help="Folder for the clip, both datasets and their previews.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
def demo(out, workers):
    """Run the main jobs on the built-in sample data and write previews.

    Makes the synthetic 240 fps clip, a highspeed dataset from it, a panorama
    dataset from the bundled panoramas, a contact sheet of each, and verifies both.
    """
    from blursynth.demo import run_demo

    run_demo(out, workers, log=lambda line: click.echo(line, err=True))


@main.command("recipes")
def recipes():
    """List the recipes installed with blursynth: name, the command it is for, the paper.

    Use one by name from any folder: blursynth highspeed --recipe kim2017_dtb --src clips/
    """
    from blursynth.cli.common import builtin_recipes, load_recipe
    from blursynth.jsondoc import load_toml

    commands = [main.commands[name] for name in ("highspeed", "panorama", "train-reference", "validate")
                if name in main.commands]
    rows = []
    if not builtin_recipes():
        raise BlursynthError("no recipes are installed with this copy of blursynth")
    for name, path in builtin_recipes().items():
        doc = load_toml(path, "recipe").get("recipe", {})
        fits = []
        for command in commands:
            try:
                load_recipe(path, command)
            except BlursynthError:
                continue
            fits.append(command.name)
        rows.append((name, fits[0] if fits else "?", doc.get("paper", "")))
    width = max(len(name) for name, _, _ in rows)
    cwidth = max(len(cmd) for _, cmd, _ in rows)
    for name, cmd, paper in rows:
        click.echo(f"{name:<{width}}  {cmd:<{cwidth}}  {paper}")
    click.echo(f"\n(files in {builtin_recipes()[rows[0][0]].parent}; use: --recipe NAME)", err=True)
