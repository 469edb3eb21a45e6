"""How to run a plan (never what to make): :class:`RunOptions`, and the option names derived from it.

Kept apart from :mod:`blursynth.run.engine` so that the CLI and the recipes can
name the run options without importing joblib.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from blursynth.errors import BlursynthError

# Run options that are part of the dataset's identity (they change the shards' bytes):
# a recipe may set them, as it sets what to make.
IDENTITY = {"identity": True}


@dataclass(frozen=True)
class RunOptions:
    """How to run (never what to make).

    None of these changes the output bytes except ``shard_size`` and
    ``compression``, which are part of the dataset's identity.

    Attributes
    ----------
    out : Path, optional
        The dataset folder (``--out``); None: :func:`~blursynth.run.engine.default_out` of the dataset kind,
        ``./highspeed-out`` or ``./panorama-out``.
    shard_size : int
        Samples per shard file.
    compression : {"none", "lzf", "gzip"}
        HDF5 filter for frame arrays.
    workers : int, optional
        Worker processes (default: all cores; on Dask: all workers).
    backend : {"loky", "dask"}
        Local processes or an existing Dask cluster.
    scheduler : str, optional
        The Dask scheduler address (``backend="dask"``).
    overwrite : bool
        Replace a different dataset in ``out``.
    skip_bad : bool
        Leave unusable sources out and list them in the manifest.
    max_pixels : int, optional
        The most pixels a source image may declare in its header
        (``--max-megapixels``); None: 100 megapixels for frames, 400 for
        panoramas (:mod:`blursynth.sources.headers`).
    quiet : bool
        No progress bar.
    threads_per_worker : int, optional
        Threads a renderer may use (:class:`blursynth.run.worker.Worker`); default
        cores // min(workers, shards to make), 1 on Dask.
    """

    out: Path | None = None
    shard_size: int = field(default=32, metadata=IDENTITY)
    compression: str = field(default="none", metadata=IDENTITY)
    workers: int | None = None
    backend: str = "loky"
    scheduler: str | None = None
    overwrite: bool = False
    skip_bad: bool = False
    quiet: bool = False
    threads_per_worker: int | None = field(default=None, metadata={"option": None})  # no flag
    max_pixels: int | None = field(default=None, metadata={"option": "max_megapixels"})  # given in MP

    def __post_init__(self):
        if self.max_pixels is not None and self.max_pixels < 1:
            raise BlursynthError(f"--max-megapixels {self.max_pixels / 1e6:g}: must be more than 0")
        if self.shard_size < 1:
            raise BlursynthError(f"--shard-size {self.shard_size}: must be at least 1")
        if self.workers is not None and self.workers < 1:
            raise BlursynthError(f"--workers {self.workers}: must be at least 1")
        if self.backend not in ("loky", "dask"):
            raise BlursynthError(f"--backend {self.backend}: expected loky or dask")
        if self.backend == "dask" and not self.scheduler:
            raise BlursynthError("--backend dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")


def option_names() -> dict[str, str | None]:
    """Field of :class:`RunOptions` -> the command-line option that gives it (underscored,
    ``max_pixels`` -> ``max_megapixels``), None for a field with no flag."""
    return {f.name: f.metadata.get("option", f.name) for f in fields(RunOptions)}


def identity() -> frozenset[str]:
    """The run options that are part of the dataset's identity: ``shard_size``, ``compression``."""
    return frozenset(f.name for f in fields(RunOptions) if f.metadata.get("identity"))


def where_and_how() -> frozenset[str]:
    """The command-line options that say where to write and how to run (``out``,
    ``workers``, ...): every run option but those of the dataset's identity
    (``shard_size``, ``compression``). A recipe sets what to make only."""
    return frozenset(option for name, option in option_names().items() if option and name not in identity())
