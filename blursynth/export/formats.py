"""The layouts, by ``--format`` name."""

from blursynth.export.bsd import LAYOUT as BSD
from blursynth.export.gopro import LAYOUT as GOPRO
from blursynth.export.lmdb import LAYOUT as LMDB
from blursynth.export.paired import LAYOUT as PAIRED
from blursynth.export.reds import LAYOUT as REDS

FORMATS = {layout.name: layout for layout in (GOPRO, PAIRED, LMDB, REDS, BSD)}
