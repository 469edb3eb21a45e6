"""``blursynth panorama``: panorama camera-rotation blur (Argaw et al. 2021)."""

from __future__ import annotations

import click
from click.core import ParameterSource

from blursynth.cli.root import main
from blursynth.cli.common import Size, make_run_options, realism_options, recipe_option, summarize_run, run_options


@main.command()
@recipe_option
@click.option("--src", multiple=True, type=click.Path(),
              help="Equirectangular panorama (jpg/png, hdr/pfm, exr) or folder, searched recursively; "
                   "repeat for several. Default: the built-in sample's two .hdr panoramas.")
@click.option("--n", "n", type=int, required=True, help="Number of samples.")
@click.option("--size", type=Size(), default="256x256", show_default=True,
              help="Render size WxH (this option used to be HxW).")
@click.option("--fov", type=float, default=60.0, show_default=True, help="Horizontal field of view, degrees.")
@click.option("--max-pitch", type=float, default=30.0, show_default=True,
              help="Initial pitch uniform in +-this, degrees (yaw is uniform all around).")
@click.option("--max-rotation", type=float, default=10.0, show_default=True,
              help="Each Euler angle of the rotation uniform in +-this, degrees.")
@click.option("--max-step", type=float, default=1.0, show_default=True,
              help="Largest image motion between consecutive frames, pixels (sets the frame count).")
@click.option("--frames-per-degree", type=float, default=None,
              help="Frame count per degree of rotation (overrides --max-step).")
@click.option("--latent", type=int, default=3, show_default=True,
              help="Sharp frames stored evenly along each exposure (0: none; 7 as in Argaw et al.'s GoPro setting).")
@click.option("--seq-len", type=int, default=1, show_default=True,
              help="Blurred frames per sample: 1 = single image, L > 1 = a virtual video.")
@click.option("--duty", type=float, default=1.0, show_default=True,
              help="Exposed fraction of each frame interval (0 < D <= 1).")
@click.option("--response", default="srgb", show_default=True,
              help="Camera response: srgb, gamma, linear, or crf:FILE (decodes 8-bit, encodes all).")
@click.option("--gamma", type=float, default=2.2, show_default=True, help="Exponent for --response gamma.")
@click.option("--per-panorama", type=int, default=1, show_default=True,
              help="Consecutive samples drawn from each panorama used (one decode serves them all).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="cpu: OpenCV remap; cuda: torch grid_sample on the GPU.")
@realism_options
@run_options("panorama")
def panorama(**kw):
    """Rotate a virtual camera inside panoramas and average the frames (Argaw et al. 2021).

    Each sample: a random view, a random rotation (Euler angles), frames along the
    slerp path averaged in linear light into the blurred image, the mid-exposure
    frame as the sharp target, and --latent frames along the path. Output: HDF5
    shards + manifest.json in --out (default ./panorama-out; docs/format.md, docs/panorama.md). Re-running
    the same command resumes an interrupted run.

    \b
    Example:
      blursynth panorama --n 10000                  (-> ./panorama-out)
      blursynth panorama --recipe argaw2021_panorama --src SUN360/ --n 10000 --out data/
    """
    from blursynth.panorama import PanoramaConfig, synthesize

    options = make_run_options(kw)
    ctx = click.get_current_context()
    w, h = kw["size"]
    if w != h and ctx.get_parameter_source("size") not in (ParameterSource.DEFAULT, None):
        click.echo(f"blursynth: note: --size is now WxH (it was HxW): rendering {w} wide, {h} high", err=True)
    src = tuple(kw.pop("src") or ())
    config = PanoramaConfig(**({"src": src} if src else {}), **kw)
    summarize_run(synthesize(config, options), options.out)
