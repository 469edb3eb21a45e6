"""``export``: a dataset in the layouts trainers read (docs/export.md)."""

from __future__ import annotations

from pathlib import Path

import click

from blursynth.cli.root import main

FORMAT_NAMES = ("gopro", "paired", "lmdb", "reds", "bsd")


@main.command("export")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMAT_NAMES), required=True,
              help="gopro: GoPro_Large; paired: BasicSR input/target; lmdb: BasicSR LMDB; reds; bsd.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Export folder (created; a killed export re-run into it resumes).")
@click.option("--select", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Selection file from 'blursynth filter': export only its samples.")
@click.option("--split-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Split file from 'blursynth split' [default: DATASET/split.json if present, else all train].")
@click.option("--input", "input_", default="blur", show_default=True,
              help="Blurred rendition used as input by paired, lmdb, reds and bsd: blur, or blur_<kind> "
                   "of a dataset made with a --response list (gopro writes every rendition).")
@click.option("--png-level", type=int, default=1, show_default=True, help="PNG compression level 0-9.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def export_command(dataset, fmt, out, select, split_file, input_, png_level, workers, quiet):
    """Export DATASET to --format's folder layout (or LMDB) in --out."""
    from blursynth.export import export

    state = export(dataset, fmt, out, select=select, split_file=split_file, input=input_,
                   png_level=png_level, workers=workers, quiet=quiet)
    parts = ", ".join(f"{split}: {n['clips']} clips, {n['frames']} frames" for split, n in state["splits"].items())
    click.echo(f"{fmt} -> {out} ({parts})", err=True)
