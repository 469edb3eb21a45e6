"""``filter``: choose samples by blur strength, motion, clipping or source (docs/report.md)."""

from __future__ import annotations

from pathlib import Path

import click

from blursynth.cli.root import main


@main.command("filter")
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Selection file to write (JSON list of sample ids; no data is copied).")
@click.option("--min-blur-psnr", type=float, default=None, help="Keep samples whose blur-vs-sharp PSNR is at least this (dB).")
@click.option("--max-blur-psnr", type=float, default=None, help="Keep samples whose blur-vs-sharp PSNR is at most this (dB).")
@click.option("--max-motion", type=float, default=None,
              help="Keep samples whose optical-flow motion is at most this (px per source frame).")
@click.option("--max-clipped", type=float, default=None,
              help="Keep samples with at most this fraction of saturated blurred pixels.")
@click.option("--sources", default=None, help="Comma-separated source ids to keep.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: all cores).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing --out that is not a selection (a dataset's own files never).")
def filter_command(dataset, out, min_blur_psnr, max_blur_psnr, max_motion, max_clipped, sources, workers, quiet,
                   overwrite):
    """Write a selection of DATASET's samples to --out.

    export, report, train-reference and validate take it with --select.
    """
    from blursynth.curate.selection import SELECTION_OUT, select_samples, write_selection
    from blursynth.dataset.outdir import check_output_file

    check_output_file(out, SELECTION_OUT, overwrite=overwrite)  # before measuring every sample
    selection = select_samples(dataset, min_blur_psnr=min_blur_psnr, max_blur_psnr=max_blur_psnr,
                               max_motion=max_motion, max_clipped=max_clipped, sources=sources,
                               workers=workers, quiet=quiet)
    write_selection(selection, out, overwrite=overwrite)
    click.echo(f"{len(selection.indices)} of {selection.n_total} samples -> {out}", err=True)
