"""The root ``blursynth`` click group; the command modules add their commands to it."""

import click

from blursynth.version import __version__
from blursynth.cli.common import Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="blursynth")
def main():
    """Synthesize and curate motion-blur training data.

    \b
    blursynth highspeed --tau 7,9,11 --src gopro/   high-speed video -> blur/sharp pairs (Kim et al. 2017)
    blursynth panorama --n 10000                    panorama rotation blur (Argaw et al. 2021)
    blursynth train-reference dtb                   train a reference deblurring model
    blursynth eval-reference RUN --data DIR         PSNR/SSIM of its output vs the blurry input
    blursynth validate DATASET                      does DATASET teach a model to deblur?
    blursynth deblur FRAMES --run RUN --out DIR     apply a trained model to your frames or video
    blursynth split DATASET                         split by source into train/val/test
    blursynth info DATASET                          what it holds, per source and frame size
    blursynth preview DATASET --out sheet.png       contact sheet of a seeded draw of samples
    blursynth verify DATASET                        check shards against their checksums
    blursynth export DATASET --format gopro --out DIR   the layouts trainers read (paired, lmdb, reds, bsd)
    blursynth report DATASET --out report.html      what is in it: counts, blur, motion, grids
    blursynth filter DATASET --min-blur-psnr 25 --out sel.json   a selection for --select
    blursynth recipes                               the installed recipes (--recipe NAME)
    blursynth sample DIR                            write the built-in synthetic 240 fps clip
    blursynth demo                                  all of it on the built-in samples
    """
