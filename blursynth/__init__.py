"""blursynth: synthesize and curate motion-blur training data.

Data flows one way: source -> plan -> render -> write.
"""

__version__ = "0.1.0"

from blursynth.errors import BadSourceError, BlursynthError  # noqa: E402

__all__ = ["__version__", "BlursynthError", "BadSourceError"]
