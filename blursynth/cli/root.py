"""The root ``blursynth`` click group; the command modules add their commands to it."""

import click

from blursynth import __version__
from blursynth.cli.common import Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="blursynth")
def main():
    """Synthesize and curate motion-blur training data.

    \b
    blursynth sample DIR              write the built-in synthetic 240 fps clip
    blursynth highspeed --src DIR     high-speed video -> blur/sharp pairs (Kim et al. 2017)
    blursynth panorama --n N          panorama rotation blur (Argaw et al. 2021)
    blursynth verify DATASET          check shards against their checksums
    blursynth train-reference dtb --data DIR --out RUN   train a reference deblurring model
    blursynth eval-reference RUN --data DIR              PSNR/SSIM of output vs blurry input
    blursynth split DATASET / validate DATASET           split by source / does it teach deblurring?
    blursynth export DATASET --format gopro --out DIR    the layouts trainers read (paired, lmdb, reds, bsd)
    blursynth report DATASET --out report.html           what is in it: counts, blur, motion, grids
    blursynth filter DATASET --min-blur-psnr 25 --out sel.json   a selection for --select
    blursynth demo                    all of it on the built-in samples
    """
