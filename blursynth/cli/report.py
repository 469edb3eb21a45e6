"""``report``: one self-contained HTML page and report.json about a dataset (docs/report.md)."""

from __future__ import annotations

from pathlib import Path

import click

from blursynth.cli.root import main


@main.command("report")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write; its JSON (same name, .json) goes beside it.")
@click.option("--select", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Selection file from 'blursynth filter': report only its samples.")
@click.option("--grid", type=int, default=4, show_default=True, help="Samples in each grid.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random grid.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing page or JSON that 'blursynth report' did not write "
                   "(a dataset's own files never).")
def report_command(dataset, out, select, grid, seed, workers, quiet, overwrite):
    """Counts, distributions, blur strength, clipping, motion and sample grids of DATASET."""
    from blursynth.report import make_report

    figures = make_report(dataset, out, select=select, grid=grid, seed=seed, workers=workers, quiet=quiet,
                          overwrite=overwrite)
    click.echo(f"{figures['dataset']['samples_reported']} samples -> {out} and {out.with_suffix('.json')}", err=True)
