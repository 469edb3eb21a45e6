"""blursynth: synthesize and curate motion-blur training data.

Data flows one way: source -> plan -> render -> write.

The Python API (:mod:`blursynth.api`) is loaded on first use, so ``import
blursynth`` stays light (no OpenCV, HDF5 or torch until a function is used)::

    blursynth.make_highspeed(src="clips/", tau=(7, 9, 11), out="data/")   # the highspeed command
    blursynth.make_panorama(n=100, size=(256, 256), out="pano/")           # the panorama command
    for sample in blursynth.open_dataset("data/"): ...                 # numpy arrays
    blursynth.torch_dataset("data/")                                   # a torch Dataset
    blursynth.blur(frames, response="gamma")                           # Eq. 1 on frames in memory
    blursynth.deblur("footage/", run="runs/dtb", out="sharp/")         # a trained model on footage
"""

from blursynth.errors import BadSourceError, BlursynthError, BlursynthWarning
from blursynth.version import __version__

_API = ("blur", "deblur", "make_highspeed", "make_panorama", "open_dataset", "sample_clip", "torch_dataset",
        "Dataset")

__all__ = ["__version__", "BlursynthError", "BadSourceError", "BlursynthWarning", *_API]


def __getattr__(name: str):
    if name in _API:
        from blursynth import api

        return getattr(api, name)
    raise AttributeError(f"module 'blursynth' has no attribute {name!r}")
