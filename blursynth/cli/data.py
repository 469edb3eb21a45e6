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
@click.option("--frames", type=int, default=96, show_default=True)
@click.option("--size", type=Size(), default="320x180", show_default=True, help="Frame size WxH.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--video", is_flag=True, help="Write a lossless FFV1 .avi instead of PNG frames.")
def sample(out, frames, size, seed, video):
    """Write the built-in synthetic 240 fps clip (textured layers moving by sub-pixel steps)."""
    from blursynth.synthetic import write_sample_clip

    if out.exists() and any(out.iterdir() if out.is_dir() else [out]):
        raise BlursynthError(f"{out}: already exists and is not empty; choose another path")
    path = write_sample_clip(out, frames, size, seed, video=video)
    click.echo(f"wrote {frames} frames of {size[0]}x{size[1]} -> {path}", err=True)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify(dataset):
    """Check every shard of DATASET against the checksums in its manifest."""
    from blursynth.shards import verify as verify_dataset

    problems = verify_dataset(dataset)
    for problem in problems:
        click.echo(f"{dataset}: {problem}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{dataset}: ok", err=True)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
def info(dataset):
    """Summarize DATASET: kind, sample count, frame shapes, config (JSON on stdout)."""
    from blursynth.shards import describe

    click.echo(json.dumps(describe(dataset), indent=1))


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
@click.option("--n", type=int, default=4, show_default=True, help="Samples to show.")
def preview(dataset, out, n):
    """Contact sheet of DATASET: blurred, sharp and latent frames of the first samples."""
    from blursynth.preview import contact_sheet

    contact_sheet(dataset, out, n)
    click.echo(f"wrote {out}", err=True)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="demo-out", show_default=True)
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
def demo(out, workers):
    """Run the main jobs on the built-in sample data and write previews.

    Makes the synthetic 240 fps clip, a highspeed dataset from it, a panorama
    dataset from the bundled panoramas, a contact sheet of each, and verifies both.
    """
    from blursynth.demo import run_demo

    run_demo(out, workers, log=lambda line: click.echo(line, err=True))
