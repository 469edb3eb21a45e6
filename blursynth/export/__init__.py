"""Export a dataset to the folder layouts and LMDB that deblurring trainers read.

One module per layout, picked from :data:`FORMATS` (as MosaicML streaming picks
its formats from a dict); :func:`export` plans the work once
(:mod:`blursynth.export.plan`) and runs it on joblib. See docs/export.md.
"""

from blursynth.export.formats import FORMATS
from blursynth.export.runner import export

__all__ = ["FORMATS", "export"]
