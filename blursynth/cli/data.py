"""Dataset utilities: ``sample``, ``verify``, ``info``, ``preview``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from blursynth.cli import main
from blursynth.cli.common import Size
from blursynth.errors import BlursynthError


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--frames", type=int, default=96, show_default=True)
@click.option("--size", type=Size(), default="320x180", show_default=True, help="Frame size WxH.")
@click.option("--seed", type=int, default=0, show_default=True)
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
    problems = __import__("blursynth.shards", fromlist=["verify"]).verify(dataset)
    for problem in problems:
        click.echo(f"{dataset}: {problem}", err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{dataset}: ok", err=True)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
def info(dataset):
    """Summarize DATASET: kind, sample count, frame shapes, config (JSON on stdout)."""
    from blursynth.shards import Manifest, open_shard

    manifest = Manifest.load(dataset)
    shapes = {}
    if manifest.shards:
        with open_shard(dataset / manifest.shards[0]["file"]) as f:
            shapes = {name: list(f[name].shape[1:]) for name in ("blur", "sharp", "latent") if name in f}
    click.echo(json.dumps({
        "kind": manifest.kind, "complete": manifest.complete,
        "samples": sum(s["samples"] for s in manifest.shards), "planned": manifest.n_samples,
        "shards": len(manifest.shards), "skipped": len(manifest.skipped), "sample_shape": shapes,
        "seed": manifest.seed, "config": manifest.config,
    }, indent=1))


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG to write.")
@click.option("--n", type=int, default=4, show_default=True, help="Samples to show.")
def preview(dataset, out, n):
    """Contact sheet of DATASET: blurred, sharp and latent frames of the first samples."""
    from blursynth.preview import contact_sheet

    contact_sheet(dataset, out, n)
    click.echo(f"wrote {out}", err=True)
