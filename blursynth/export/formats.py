"""The layouts, by ``--format`` name."""

from blursynth.export import bsd, gopro, lmdb, paired, reds

FORMATS = {module.LAYOUT.name: module.LAYOUT for module in (gopro, paired, lmdb, reds, bsd)}
