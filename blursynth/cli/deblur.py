"""``deblur``: a trained reference model, or shipped weights, applied to footage (docs/models.md)."""

from __future__ import annotations

from pathlib import Path

import click

from blursynth.cli.common import max_megapixels_option, pixel_limit
from blursynth.cli.reference import RegistryCommand
from blursynth.cli.root import main
from blursynth.sources.headers import FRAME_PIXELS


@main.command("deblur", cls=RegistryCommand)
@click.argument("input", type=click.Path(path_type=Path))
@click.option("--run", "run", default=None, type=click.Path(path_type=Path),
              help="Run folder of 'blursynth train-reference' (its checkpoint.pt, else model.pt) "
                   "or a checkpoint file.")
@click.option("--model", "model", default=None, metavar="MODEL",
              help="Use the weights shipped for MODEL [default, without --run: the shipped model that "
                   "fits INPUT: a video model for a video or a folder of frames, a single-image model for one "
                   "image; among several, the best held-out gain].")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Folder for the PNG frames: empty, new, or an earlier 'deblur' output of the same INPUT.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", type=click.Choice(["none", "bf16"]), default="none", show_default=True,
              help="Mixed precision (bf16 autocast).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary line.")
@max_megapixels_option(FRAME_PIXELS)
def deblur(input, run, model, out, device, amp, quiet, max_megapixels):
    """Deblur INPUT (a folder of frames, one image or a video) with the model of a training
    run (--run), or with shipped weights (--model; by default the shipped model that fits
    INPUT), into PNG frames in OUT.

    \b
    OUT/STEM.png for each frame STEM of a folder or image; OUT/frame_000000.png ... for a video.
    Each model runs as its task says (docs/models.md):
    {inference}
    Video models see the first and last frame repeated at the ends. A model with K outputs per
    image writes STEM_k0.png .. STEM_k{K-1}.png, where STEM_k{K//2} is the sharp middle frame
    (STEM_k1.png for K = 3).
    OUT/deblur.json records the inputs and the run. A failed run leaves OUT as it was.
    """
    from blursynth.errors import BlursynthError
    from reference_models.apply import deblur as deblur_footage
    from reference_models.footage import open_footage
    from reference_models.shipped import model_for_footage, shipped_weights

    limit = pixel_limit(max_megapixels)
    if run is not None and model is not None:
        raise BlursynthError("deblur: give --run or --model, not both")
    if run is None:
        if model is None:
            medium = open_footage(input, **({} if limit is None else {"max_pixels": limit})).medium
            model = model_for_footage(medium)
            if not quiet:
                click.echo(f"deblur: using the shipped {model} weights (pass --model or --run to choose)", err=True)
        run = shipped_weights(model)
    record = deblur_footage(input, run, out, device=device, amp=amp, progress=not quiet,
                            **({} if limit is None else {"max_pixels": limit}))
    if not quiet:
        n, k = record["n_frames"], record["frames_per_input"]
        what = f"{n} frame{'s' if n != 1 else ''}" + (f" ({k} output frames each)" if k > 1 else "")
        click.echo(f"{what} deblurred by {record['model']} at step {record['step']} -> {record['out']}", err=True)
