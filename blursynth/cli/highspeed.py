"""``blursynth highspeed``: high-speed footage -> blur/sharp pairs (Kim et al. 2017)."""

from __future__ import annotations

import click

from blursynth.cli.root import main
from blursynth.cli.common import (NumberList, Size, make_run_options, realism_options, recipe_option, summarize_run,
                                  run_options)


class PeriodType(click.ParamType):
    name = "auto|tau|LIST"

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple, int)) or (isinstance(value, str) and value not in ("auto", "tau")):
            return NumberList(int).convert(value, param, ctx)
        return value


@main.command()
@recipe_option
@click.option("--src", multiple=True, required=True, type=click.Path(),
              help="Frame folder, tree of frame folders, or video file; repeat for several.")
@click.option("--tau", type=NumberList(int), default="7", show_default=True,
              help="Frames averaged per blurred frame (odd); one is drawn per clip, e.g. 7,9,11.")
@click.option("--T", "T", type=PeriodType(), default="auto", show_default=True,
              help="Exposure period in frames: auto (uniform tau..2tau-1), tau (no gap), or a list.")
@click.option("--fps", type=float, default=None, show_default="a video's own frame rate, else 240",
              help="Frame rate of the source (recorded in each sample; a warning below 120).")
@click.option("--repeats", type=int, default=1, show_default=True, help="Independent (tau, T) draws per clip.")
@click.option("--seq-len", type=int, default=1, show_default=True,
              help="Consecutive blurred frames per sample (1: pairs; 13: Kim et al.'s sequences).")
@click.option("--latent", type=int, default=0, show_default=True,
              help="Also store K latent frames evenly spanning each exposure (K-1 must divide tau-1).")
@click.option("--response", default="gamma", show_default=True,
              help="Camera response: gamma, srgb, linear, or crf:FILE; a comma list (gamma,linear) stores "
                   "one rendition per curve from the same frames: blur (first), blur_<kind> (the others).")
@click.option("--gamma", type=float, default=2.2, show_default=True, help="Exponent for --response gamma.")
@click.option("--resize", type=Size(partial=True), default=None, show_default="each clip's own size",
              help="Output size, area-resampled in linear light: WxH, or 960x / x540 to keep each clip's "
                   "aspect ratio. Clips of different sizes go to different shards.")
@realism_options
@click.option("--interpolate", type=int, default=1, show_default=True, metavar="N",
              help="Insert N-1 optical-flow interpolated frames between consecutive source frames before "
                   "averaging (against ghosting; REDS used 16). The sharp and latent frames stay real frames.")
@click.option("--motion", is_flag=True,
              help="Record the mean and max optical-flow motion (px/frame) of each sample in meta "
                   "(always on with --interpolate).")
@run_options("highspeed")
def highspeed(**kw):
    """Average tau high-speed frames every T frames into blurred frames (Kim et al. 2017, Eq. 1).

    Each blurred frame is paired with its sharp mid-exposure frame. Output: HDF5
    shards + manifest.json in --out (default ./highspeed-out; see docs/format.md).
    Re-running the same command resumes an interrupted run. When no --src path
    exists and no --out is given (the typed try-out), the built-in 240 fps sample
    clip is used (with a note); with --out, a missing --src is an error.

    \b
    Example:
      blursynth highspeed --tau 7,9,11 --src gopro/
      blursynth highspeed --recipe kim2017_dtb --src clips/ --out dtb-train/
    """
    from blursynth.highspeed import HighspeedConfig, synthesize

    options = make_run_options(kw)
    config = HighspeedConfig(src=tuple(kw.pop("src")), **kw)
    summarize_run(synthesize(config, options), options.out)
