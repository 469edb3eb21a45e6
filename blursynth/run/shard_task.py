"""One shard's work: the plan cut into shards, and the worker task that renders and writes one.

A :class:`ShardJob` carries everything a worker needs for one shard; it is
pickled to the worker (joblib: loky processes or Dask), where
:func:`render_shard` renders its specs in order and writes them through the
:class:`~blursynth.dataset.ShardWriter`, so shard ``k`` holds the same bytes
whichever worker made it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import blursynth.budget as budget
from blursynth.dataset import Sample, ShardWriter
from blursynth.errors import BadSourceError
from blursynth.run.progress import progress_file
from blursynth.run.signals import leave_interrupts_to_the_parent
from blursynth.run.worker import Worker
from blursynth.sources import stamps

# ``renderer(spec, worker) -> Sample`` (see blursynth.run.worker).
# Specs of the same shard a worker is told it renders next (Worker.upcoming).
LOOKAHEAD = 4
Renderer = Callable[[object, Worker], Sample]


class ShardCut:
    """The specs cut into shards of at most ``size`` consecutive specs.

    A shard holds one frame size: a new shard also starts where a spec's
    ``frame_size`` (when specs have one) differs from the previous spec's. The
    pipeline orders its specs so that equal sizes are consecutive.
    """

    def __init__(self, specs: Sequence, size: int):
        self.specs, self.size = specs, size
        starts, previous = [], object()
        for i, spec in enumerate(specs):
            key = getattr(spec, "frame_size", None)
            if not starts or key != previous or i - starts[-1] >= size:
                starts.append(i)
            previous = key
        self.starts = starts

    @property
    def uniform(self) -> bool:
        """Whether every shard but the last holds exactly ``size`` specs."""
        return self.starts == list(range(0, len(self.specs), self.size))

    def shard(self, k: int) -> Sequence:
        """The specs of shard ``k``."""
        end = self.starts[k + 1] if k + 1 < len(self.starts) else len(self.specs)
        return self.specs[self.starts[k]:end]


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs to render and write one shard.

    Attributes
    ----------
    renderer : callable
        ``renderer(spec, worker) -> Sample``, importable (pickled to workers).
    specs : sequence
        The shard's specs, in index order.
    path : Path
        The shard file (absolute: a Dask worker may run elsewhere).
    kind : str
        The dataset's pipeline kind, recorded in the shard.
    config : dict
        The resolved config, recorded in the shard.
    fingerprint : str
        The run's identity, recorded in the shard.
    index : int
        The shard's index.
    compression : str
        HDF5 filter for frame arrays.
    skip_bad : bool
        Leave a source that fails here out of the whole shard.
    exclude : frozenset
        Sources found bad elsewhere: their specs are left out.
    threads : int
        Threads the renderer may use (:class:`~blursynth.run.worker.Worker`).
    parent : int, optional
        The parent's process id (loky): the worker leaves Ctrl-C to it.
    writers : int
        Shards written at once (recorded in the shard).
    """

    renderer: Renderer
    specs: Sequence
    path: Path
    kind: str
    config: dict
    fingerprint: str
    index: int
    compression: str
    skip_bad: bool
    exclude: frozenset = frozenset()
    threads: int = 1
    parent: int | None = None
    writers: int = 1


@functools.lru_cache(maxsize=1)
def _process_worker(threads: int) -> Worker:
    """This process's :class:`Worker`: one per worker process, kept across its shards."""
    return Worker(threads)


def render_shard(job: ShardJob):
    """Worker task: render ``job.specs`` into shard ``job.index``. Returns (manifest entry, skips).

    Specs whose ``source`` is in ``job.exclude`` (found bad elsewhere) are left out;
    with ``job.skip_bad`` a source that fails here is left out of the whole shard.
    """
    import cv2
    # Parallelism comes from the workers; OpenCV's own threads stay off.
    cv2.setNumThreads(1)
    leave_interrupts_to_the_parent(job.parent)
    worker = _process_worker(job.threads)
    path, specs = job.path, job.specs
    skipped, excluded = [], set(job.exclude)
    progress = progress_file(path)  # read by the parent's bar
    header = dict(kind=job.kind, config=job.config, fingerprint=job.fingerprint, shard_index=job.index,
                  capacity=len(specs), compression=job.compression, writers=job.writers,
                  sources=[s for spec in specs for s in getattr(spec, "stamps", ())])
    try:
        while True:  # once more each time a source turns out bad: its earlier samples must go too
            with ShardWriter(path, **header) as writer:
                bad = _write_samples(writer, job.renderer, worker, specs, excluded, job.skip_bad, progress)
                if bad is not None:
                    writer.abort()
                    skipped.append(bad)
                    excluded.add(bad["source"])
            if bad is None:
                break
    except (OSError, RuntimeError) as exc:  # h5py reports a full disk as either
        if budget.is_disk_full(exc, path.parent):
            raise budget.disk_full_error(path.parent) from None
        raise
    finally:
        progress.unlink(missing_ok=True)
    own = {spec.source for spec in specs}
    entry = {"index": job.index, "file": path.name, "samples": writer.count, "sha256": writer.digest}
    if excluded & own:
        entry["excluded"] = sorted(excluded & own)
    return entry, skipped


def _write_samples(writer: ShardWriter, renderer: Renderer, worker: Worker, specs: Sequence,
                   excluded: set, skip_bad: bool, progress: Path) -> dict | None:
    """Render and append every spec not from an ``excluded`` source.

    Returns None when all went in, or (``skip_bad``) the skip record of the
    first source found bad, at which point the shard must be started again.
    """
    todo = [spec for spec in specs if spec.source not in excluded]
    for i, spec in enumerate(todo):
        worker.upcoming = todo[i + 1:i + 1 + LOOKAHEAD]
        try:
            sample = renderer(spec, worker)
        except BadSourceError as exc:
            if not skip_bad:
                raise
            return {"source": spec.source, "reason": exc.reason, "sample": spec.index}
        # After the render: a file replaced before or while it was read shows here.
        stamps.check(getattr(spec, "stamps", ()))
        writer.append(sample)
        progress.write_text(str(writer.count))
    return None
