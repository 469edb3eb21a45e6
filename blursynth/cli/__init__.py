"""The ``blursynth`` command: a thin skin over the library.

Each command group lives in its own module, parses options into a config and
calls the library; the root group is :mod:`blursynth.cli.root`. Importing this
package registers every command.
"""

from blursynth.cli import curation, data, deblur, export, highspeed, panorama, reference, report  # noqa: F401  (they register their commands)
from blursynth.cli.root import main

__all__ = ["main"]
