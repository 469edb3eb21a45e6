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


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default="demo-out", show_default=True)
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
def demo(out, workers):
    """Run the main jobs on the built-in sample data and write previews.

    Makes the synthetic 240 fps clip, a highspeed dataset from it, a panorama
    dataset from the bundled panoramas, a contact sheet of each, and verifies both.
    """
    from blursynth.engine import RunOptions
    from blursynth.highspeed import HighspeedConfig
    from blursynth.highspeed import synthesize as synthesize_highspeed
    from blursynth.preview import contact_sheet
    from blursynth.shards import verify as verify_dataset
    from blursynth.synthetic import write_sample_clip

    clip = out / "clip"
    if not clip.exists():
        write_sample_clip(clip)
    jobs = [("highspeed", lambda o: synthesize_highspeed(
        HighspeedConfig(src=(str(clip),), tau=(7, 9, 11), latent=3, repeats=4), o))]
    try:
        from blursynth.panorama import PanoramaConfig
        from blursynth.panorama import synthesize as synthesize_panorama
        jobs.append(("panorama", lambda o: synthesize_panorama(PanoramaConfig(n=24, latent=3), o)))
    except ImportError:  # pragma: no cover - the panorama pipeline ships with the package
        pass
    for name, job in jobs:
        dataset = out / name
        click.echo(f"== {name} -> {dataset}", err=True)
        manifest = job(RunOptions(out=dataset, workers=workers, overwrite=True))
        contact_sheet(dataset, out / f"{name}.png")
        problems = verify_dataset(dataset)
        if problems:
            raise BlursynthError(f"{dataset}: {problems[0]}")
        click.echo(f"   {sum(s['samples'] for s in manifest.shards)} samples, checksums ok, "
                   f"preview {out / (name + '.png')}", err=True)
