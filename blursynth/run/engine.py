"""Run a plan: render its samples in parallel and write them as shards.

The plan (a list of frozen sample specs, each with ``index``) is cut into shards
of ``shard_size`` consecutive specs. One task renders and writes one shard, so
shard ``k`` holds the same bytes whichever worker made it and however many
workers there were. Parallelism is joblib's: local processes (loky) or, with
``backend="dask"``, an existing Dask distributed cluster (workers then need the
output folder on a shared file system). There is no scheduler of our own.

Resume: a re-run with the same identity (config, seed, shard size, compression)
keeps every finished shard whose checksum matches and makes the rest.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import joblib

import blursynth.budget as budget
import blursynth.run.cluster as cluster
from blursynth.dataset.atomic import file_sha256
from blursynth.errors import BadSourceError, BlursynthError, note
from blursynth.dataset.outdir import entries as out_entries
from blursynth.dataset.outdir import output_folder, remove_own
from blursynth.run.pool import local_workers
from blursynth.run.progress import LiveProgress, progress_bar, progress_file
from blursynth.dataset import (FORMAT_VERSION, MANIFEST, Manifest, Sample, ShardWriter, is_own_file, is_temporary,
                              open_shard, recorded_sources, shard_name)
from blursynth.run.signals import leave_interrupts_to_the_parent, spawning_ignores_sigint, stop_on_sigterm
from blursynth.sources import stamps
from blursynth.run.worker import Worker

# ``renderer(spec, worker) -> Sample`` (see blursynth.run.worker).
# Specs of the same shard a worker is told it renders next (Worker.upcoming).
LOOKAHEAD = 4
Renderer = Callable[[object, Worker], Sample]


@dataclass(frozen=True)
class RunOptions:
    """How to run (never what to make).

    None of these changes the output bytes except ``shard_size`` and
    ``compression``, which are part of the dataset's identity.

    Attributes
    ----------
    out : Path, optional
        The dataset folder (``--out``); None: :func:`default_out` of the kind,
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
    shard_size: int = 32
    compression: str = "none"
    workers: int | None = None
    backend: str = "loky"
    scheduler: str | None = None
    overwrite: bool = False
    skip_bad: bool = False
    quiet: bool = False
    threads_per_worker: int | None = None  # None: cores // min(workers, shards to make) (1 on Dask)
    max_pixels: int | None = None

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


@functools.lru_cache(maxsize=1)
def _process_worker(threads: int) -> Worker:
    """This process's :class:`Worker`: one per worker process, kept across its shards."""
    return Worker(threads)


def _render_shard(renderer: Renderer, specs: Sequence, path: Path, kind: str, config: dict,
                  fingerprint: str, index: int, compression: str, skip_bad: bool,
                  exclude: frozenset = frozenset(), threads: int = 1, parent: int | None = None,
                  writers: int = 1):
    """Worker task: render ``specs`` into shard ``index``. Returns (manifest entry, skips).

    Specs whose ``source`` is in ``exclude`` (found bad elsewhere) are left out;
    with ``skip_bad`` a source that fails here is left out of the whole shard.
    """
    import cv2
    # Parallelism comes from the workers; OpenCV's own threads stay off.
    cv2.setNumThreads(1)
    leave_interrupts_to_the_parent(parent)
    worker = _process_worker(threads)
    skipped, excluded = [], set(exclude)
    progress = progress_file(path)  # read by the parent's bar
    header = dict(kind=kind, config=config, fingerprint=fingerprint, shard_index=index,
                  capacity=len(specs), compression=compression, writers=writers,
                  sources=[s for spec in specs for s in getattr(spec, "stamps", ())])
    try:
        while True:  # once more each time a source turns out bad: its earlier samples must go too
            with ShardWriter(path, **header) as writer:
                bad = _write_samples(writer, renderer, worker, specs, excluded, skip_bad, progress)
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
    entry = {"index": index, "file": path.name, "samples": writer.count, "sha256": writer.digest}
    if excluded & own:
        entry["excluded"] = sorted(excluded & own)
    return entry, skipped


@contextlib.contextmanager
def _disk_full_is_one_line(out: Path):
    """A write of the parent (the manifest) that finds the disk full: one line;
    the dataset stays as the last manifest describes it, and resumable."""
    try:
        yield
    except (OSError, RuntimeError) as exc:
        if budget.is_disk_full(exc, out):
            raise budget.disk_full_error(out) from None
        raise


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


def _existing_shard_entry(path: Path, manifest: Manifest, index: int, recorded: dict | None):
    """The manifest entry of a finished shard on disk, or None if it must be remade."""
    if not path.exists():
        return None
    if recorded is not None:
        if file_sha256(path) != recorded["sha256"]:
            return None
        # A kept shard and the shards still to make must come from the same files.
        stamps.check(recorded_sources(path), since=f"{path.name} was made from it")
        return recorded
    # Renamed into place but the run died before recording it: the rename is
    # atomic, so the file is complete if it opens and belongs to this run.
    try:
        with open_shard(path) as f:
            if f.attrs["fingerprint"] != manifest.fingerprint or f.attrs["shard_index"] != index:
                return None
            count = int(f.attrs["samples"])
    except (OSError, KeyError, BlursynthError):
        return None
    return {"index": index, "file": path.name, "samples": count, "sha256": file_sha256(path)}


def _prepare_out(out: Path, manifest: Manifest, overwrite: bool) -> Manifest:
    """Check that ``out`` (locked by this run) may be (re)used; return the manifest to continue.

    With ``overwrite``, only files blursynth can prove are its own
    (:func:`blursynth.dataset.shards.is_own_file`) are deleted.
    """
    entries = out_entries(out)
    if (out / MANIFEST).exists():
        try:
            old = Manifest.load(out)
        except BlursynthError:
            old = None
        if old is not None and old.kind == manifest.kind and old.identity() == manifest.identity() \
                and old.format_version == FORMAT_VERSION:
            manifest.shards = old.shards
            manifest.skipped = old.skipped
            return manifest
        if not overwrite:
            what = ("an older dataset format" if old is not None and old.format_version != FORMAT_VERSION
                    else "a different config")
            raise BlursynthError(
                f"--out {out}: holds a dataset made with {what}; "
                "pass --overwrite to replace it, or choose another --out"
            )
    elif entries and not overwrite:
        raise BlursynthError(f"--out {out}: the folder is not empty; pass --overwrite or choose another --out")
    if overwrite:
        remove_own(out, is_own_file)
    return manifest


def _remove_own(path: Path) -> None:
    """Delete ``path`` if it is a file (or link) named as blursynth names its files; else leave it."""
    if is_own_file(path.name) and not path.is_dir():
        path.unlink(missing_ok=True)


def _parallel(options: RunOptions, n_tasks: int):
    if options.backend == "dask":
        # connected on entry, within a deadline (blursynth.run.cluster)
        return cluster.session(options.scheduler), options.workers or -1, options.threads_per_worker or 1
    cores = os.cpu_count() or 1
    n_jobs = options.workers or cores
    # Fewer tasks than workers leaves workers idle: give the busy ones their cores
    # (a one-shard run on --workers 2 was 0.73x of --workers 1 with cores // workers).
    busy = max(1, min(n_jobs, n_tasks))
    return local_workers(), n_jobs, options.threads_per_worker or max(1, cores // busy)


def default_out(kind: str) -> Path:
    """The dataset folder of a run without ``--out``: ``./KIND-out`` in the current folder."""
    return Path(f"{kind}-out")


def _announce(out: Path, options: RunOptions, lines: Sequence[str] = ()) -> None:
    """Say where the data goes, once the folder is known to be usable, and (unless
    quiet) the pipeline's ``lines`` (an estimate of the size, a default assumed)."""
    if options.out is None:
        print(f"blursynth: writing to {out}/ (the default; pass --out DIR to choose)", file=sys.stderr)
    elif not options.quiet:
        print(f"blursynth: writing to {out}/", file=sys.stderr)
    if not options.quiet:
        for line in lines:
            print(f"blursynth: {line}", file=sys.stderr)


class _Plan:
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


def run(kind: str, config: dict, seed: int, specs: Sequence, renderer: Renderer,
        options: RunOptions, skipped: Sequence[dict] = (), sources: Sequence[dict] = (),
        announce: Sequence[str] = ()) -> Manifest:
    """Render ``specs`` with ``renderer`` into shards under ``options.out``.

    The steps: prepare ``--out`` (:func:`_prepare_out`), keep the finished
    shards of an earlier run (:func:`_resume`), find shards that hold a source
    found bad since (:func:`_needing_redo`), render the rest on the backend
    (:func:`_render_all`) with a progress bar, and record the result
    (:func:`_finish`).

    Parameters
    ----------
    kind : str
        Dataset kind recorded in files (``"highspeed"``, ``"panorama"``).
    config : dict
        The fully resolved, JSON-serializable config that determines the content.
    seed : int
        The run's seed (recorded; specs already carry their own seeds).
    specs : sequence
        Frozen dataclasses with ``index`` and ``source`` attributes, in index order.
    renderer : callable
        ``renderer(spec, worker) -> Sample``, importable (pickled to workers).
    options : RunOptions
        Where and how to run.
    skipped : sequence of dict
        Sources dropped at plan time by ``--skip-bad`` (recorded in the manifest).
    sources : sequence of dict
        Notes on sources recorded in the manifest's ``sources`` (e.g. a
        video's ``header_frames`` and ``decoded_frames``).
    announce : sequence of str
        Lines said (unless quiet) once ``out`` is known to be usable, before
        the first sample: an error found earlier stays the only line.

    Returns
    -------
    Manifest
        The final manifest, also saved as ``manifest.json``.
    """
    out = default_out(kind) if options.out is None else Path(options.out)
    if options.compression == "lzf":
        note("note: --compression lzf: the samples are the same for any --workers, but the shards' bytes "
             "(and sha256) may differ between runs (liblzf's hash table is not initialised); use gzip for "
             "byte-identical compressed shards")
    shards = _Plan(specs, options.shard_size)
    manifest = Manifest(kind=kind, config=config, seed=seed, n_samples=len(specs),
                        shard_size=options.shard_size, compression=options.compression,
                        shard_starts=None if shards.uniform else shards.starts)
    # The folder's lock (blursynth.dataset.outdir) before anything is deleted.
    with output_folder(out), stop_on_sigterm(), _disk_full_is_one_line(out):
        manifest = _prepare_out(out, manifest, options.overwrite)
        manifest.sources = [dict(s) for s in sources]
        _announce(out, options, announce)
        _remove_temporaries(out)
        todo, kept = _resume(out, manifest, skipped)
        if kept and not options.quiet:
            print(f"blursynth: resuming: {len(kept)} of {manifest.n_shards} shards done", file=sys.stderr)
        manifest.save(out)
        todo += _needing_redo(manifest, shards)
        done = sum(len(shards.shard(k)) for k in kept)
        live = LiveProgress(progress_bar(len(specs), done, options.quiet, kind), out, done)
        try:
            _render_all(todo, manifest, shards, renderer, options, out, live, counted=set(kept))
        finally:
            live.finish()
            _remove_temporaries(out)
        _finish(manifest, out)
    return manifest


def _remove_temporaries(out: Path) -> None:
    """Delete files a killed run left under blursynth's temporary names (never a
    finished file, never a user's ``*.tmp-*``: see :func:`blursynth.dataset.shards.is_temporary`)."""
    remove_own(out, is_temporary)


def _resume(out: Path, manifest: Manifest, planned_skips: Sequence[dict]) -> tuple[list[int], set[int]]:
    """Keep every finished shard on disk that belongs to this run; list the others.

    Returns ``(todo, kept)``: shard indices to make, and those kept. The
    manifest's skip list becomes the plan-time skips plus the render-time
    skips recorded in kept shards.
    """
    manifest.skipped = [dict(s) for s in planned_skips] + [s for s in manifest.skipped if "sample" in s]
    recorded = {s["index"]: s for s in manifest.shards}
    manifest.shards = []
    todo = []
    for k in range(manifest.n_shards):
        path = out / shard_name(k)
        entry = _existing_shard_entry(path, manifest, k, recorded.get(k))
        if entry is None:
            _remove_own(path)
            todo.append(k)
        else:
            manifest.shards.append(entry)
    kept = {e["index"] for e in manifest.shards}
    manifest.skipped = [s for s in manifest.skipped
                        if "sample" not in s or manifest.shard_of(s["sample"]) in kept]
    manifest.complete = False
    return todo, kept


def _bad_sources(manifest: Manifest) -> frozenset:
    """Sources found bad while rendering (``--skip-bad``)."""
    return frozenset(s["source"] for s in manifest.skipped if "sample" in s)


def _needing_redo(manifest: Manifest, shards: _Plan) -> list[int]:
    """Finished shards that hold samples of a source found bad since they were made.

    --skip-bad drops a whole source: a shard written before a bad frame of one
    of its sources was found elsewhere is made again without it, so the result
    depends only on which sources are bad, not on the order in which work
    finished (or on where an earlier run was killed).
    """
    bad = _bad_sources(manifest)
    redo = []
    for entry in manifest.shards:
        sources = {spec.source for spec in shards.shard(entry["index"])}
        if (sources & bad) - set(entry.get("excluded", ())):
            redo.append(entry["index"])
    return redo


def _render_all(todo: list[int], manifest: Manifest, shards: _Plan, renderer: Renderer,
                options: RunOptions, out: Path, live: LiveProgress, counted: set[int]) -> None:
    """Render the shards in ``todo`` on the backend, recording each as it finishes.

    Repeats for the shards that a source found bad during the round makes
    stale (:func:`_needing_redo`) until there are none.
    """
    context, n_jobs, threads = _parallel(options, len(todo))
    with context:
        while todo:
            exclude = _bad_sources(manifest)
            tasks = (joblib.delayed(_render_shard)(
                renderer, shards.shard(k), out.absolute() / shard_name(k), manifest.kind, manifest.config,
                manifest.fingerprint, k, options.compression, options.skip_bad, exclude, threads,
                os.getpid() if options.backend == "loky" else None, max(1, n_jobs))
                for k in todo)
            with spawning_ignores_sigint(options.backend == "loky"):
                results = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered",
                                          batch_size=1, pre_dispatch="2*n_jobs")(tasks)
            try:
                for entry, shard_skips in results:
                    manifest.shards = [e for e in manifest.shards if e["index"] != entry["index"]]
                    manifest.shards.append(entry)
                    manifest.skipped.extend(shard_skips)
                    manifest.save(out)
                    if entry["index"] not in counted:
                        counted.add(entry["index"])
                        live.done += len(shards.shard(entry["index"]))
                        live.show()
            except BaseException as exc:
                # Stopped here (an interrupt, a full disk) rather than inside
                # joblib: closing the generator makes joblib kill the workers
                # now instead of whenever it is collected.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    results.close()
                if options.backend == "dask" and cluster.cluster_lost(exc):
                    raise BlursynthError(cluster.LOST) from None
                raise
            todo = _needing_redo(manifest, shards)


def _finish(manifest: Manifest, out: Path) -> None:
    """Sort the shards, keep one skip entry per bad source, mark complete, save."""
    manifest.shards.sort(key=lambda e: e["index"])
    # One entry per bad source: the reason found at its first sample.
    first = {}
    for entry in sorted(manifest.skipped, key=lambda s: (s.get("sample", -1), s["source"])):
        first.setdefault(entry["source"], entry)
    manifest.skipped = list(first.values())
    if manifest.n_samples and not any(e["samples"] for e in manifest.shards):
        # --skip-bad found every source bad while rendering: an empty dataset
        # must not look finished (the same error as at planning time).
        manifest.save(out)
        example = f" (e.g. {manifest.skipped[0]['source']}: {manifest.skipped[0]['reason']})" \
            if manifest.skipped else ""
        raise BlursynthError(f"--src: no usable source, every one was skipped while rendering{example}")
    manifest.complete = True
    manifest.save(out)
