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
import fcntl
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import joblib

from blursynth.atomic import TMP_MARK, file_sha256
from blursynth.errors import BadSourceError, BlursynthError
from blursynth.progress import LiveProgress, progress_bar, progress_file
from blursynth.shards import MANIFEST, Manifest, Sample, ShardWriter, is_own_file, open_shard, shard_name
from blursynth.worker import Worker

# ``renderer(spec, worker) -> Sample`` (see blursynth.worker).
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
    quiet : bool
        No progress bar.
    threads_per_worker : int, optional
        Threads a renderer may use (:class:`blursynth.worker.Worker`); default
        cores // workers, 1 on Dask.
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
    threads_per_worker: int | None = None  # None: cores // workers (1 on Dask)

    def __post_init__(self):
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
                  exclude: frozenset = frozenset(), threads: int = 1):
    """Worker task: render ``specs`` into shard ``index``. Returns (manifest entry, skips).

    Specs whose ``source`` is in ``exclude`` (found bad elsewhere) are left out;
    with ``skip_bad`` a source that fails here is left out of the whole shard.
    """
    import cv2
    # Parallelism comes from the workers; OpenCV's own threads stay off.
    cv2.setNumThreads(1)
    worker = _process_worker(threads)
    skipped, excluded = [], set(exclude)
    progress = progress_file(path)  # read by the parent's bar
    header = dict(kind=kind, config=config, fingerprint=fingerprint, shard_index=index,
                  capacity=len(specs), compression=compression)
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
    finally:
        progress.unlink(missing_ok=True)
    own = {spec.source for spec in specs}
    entry = {"index": index, "file": path.name, "samples": writer.count, "sha256": writer.digest}
    if excluded & own:
        entry["excluded"] = sorted(excluded & own)
    return entry, skipped


def _write_samples(writer: ShardWriter, renderer: Renderer, worker: Worker, specs: Sequence,
                   excluded: set, skip_bad: bool, progress: Path) -> dict | None:
    """Render and append every spec not from an ``excluded`` source.

    Returns None when all went in, or (``skip_bad``) the skip record of the
    first source found bad, at which point the shard must be started again.
    """
    for spec in specs:
        if spec.source in excluded:
            continue
        try:
            sample = renderer(spec, worker)
        except BadSourceError as exc:
            if not skip_bad:
                raise
            return {"source": spec.source, "reason": exc.reason, "sample": spec.index}
        writer.append(sample)
        progress.write_text(str(writer.count))
    return None


def _existing_shard_entry(path: Path, manifest: Manifest, index: int, recorded: dict | None):
    """The manifest entry of a finished shard on disk, or None if it must be remade."""
    if not path.exists():
        return None
    if recorded is not None:
        return recorded if file_sha256(path) == recorded["sha256"] else None
    # Renamed into place but the run died before recording it: the rename is
    # atomic, so the file is complete if it opens and belongs to this run.
    try:
        with open_shard(path) as f:
            if f.attrs["fingerprint"] != manifest.fingerprint or f.attrs["shard_index"] != index:
                return None
            count = int(f.attrs["samples"])
    except (OSError, KeyError):
        return None
    return {"index": index, "file": path.name, "samples": count, "sha256": file_sha256(path)}


@contextlib.contextmanager
def _locked(out: Path):
    lock_path = out / ".blursynth.lock"
    fh = open(lock_path, "w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise BlursynthError(f"--out {out}: another blursynth run is writing there") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()
        lock_path.unlink(missing_ok=True)


def _prepare_out(out: Path, manifest: Manifest, overwrite: bool) -> Manifest:
    """Create ``out`` or check that it may be (re)used; return the manifest to continue."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BlursynthError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise BlursynthError(f"--out {out}: the folder is not writable")
    entries = [p.name for p in out.iterdir() if p.name != ".blursynth.lock"]
    if (out / MANIFEST).exists():
        try:
            old = Manifest.load(out)
        except BlursynthError:
            old = None
        if old is not None and old.kind == manifest.kind and old.identity() == manifest.identity():
            manifest.shards = old.shards
            manifest.skipped = old.skipped
            return manifest
        if not overwrite:
            raise BlursynthError(
                f"--out {out}: holds a dataset made with a different config; "
                "pass --overwrite to replace it, or choose another --out"
            )
    elif entries and not overwrite:
        raise BlursynthError(f"--out {out}: the folder is not empty; pass --overwrite or choose another --out")
    if overwrite:
        # Only blursynth's own files are removed; anything else a user put there stays.
        for name in entries:
            if is_own_file(name):
                (out / name).unlink()
    return manifest


def _check_reachable(address: str) -> None:
    """Fail fast (and in one line) when nothing listens at a tcp:// scheduler address."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        return
    try:
        socket.create_connection((parts.hostname, parts.port or 8786), timeout=10).close()
    except OSError as exc:
        raise BlursynthError(f"--scheduler {address}: cannot connect ({exc.strerror or exc})") from None


def _parallel(options: RunOptions):
    if options.backend == "dask":
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - distributed is a dependency
            raise BlursynthError("--backend dask needs the 'distributed' package") from None
        _check_reachable(options.scheduler)
        try:
            client = Client(options.scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise BlursynthError(f"--scheduler {options.scheduler}: cannot connect ({exc})") from None
        stack = contextlib.ExitStack()
        stack.enter_context(client)
        stack.enter_context(joblib.parallel_config(backend="dask"))
        n_jobs = options.workers or -1
        return stack, n_jobs, options.threads_per_worker or 1
    cores = os.cpu_count() or 1
    n_jobs = options.workers or cores
    return contextlib.nullcontext(), n_jobs, options.threads_per_worker or max(1, cores // n_jobs)


def default_out(kind: str) -> Path:
    """The dataset folder of a run without ``--out``: ``./KIND-out`` in the current folder."""
    return Path(f"{kind}-out")


def _announce(out: Path, options: RunOptions) -> None:
    """Say where the data goes, once the folder is known to be usable."""
    if options.out is None:
        print(f"blursynth: writing to {out}/ (the default; pass --out DIR to choose)", file=sys.stderr)
    elif not options.quiet:
        print(f"blursynth: writing to {out}/", file=sys.stderr)


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
        options: RunOptions, skipped: Sequence[dict] = ()) -> Manifest:
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

    Returns
    -------
    Manifest
        The final manifest, also saved as ``manifest.json``.
    """
    out = default_out(kind) if options.out is None else Path(options.out)
    shards = _Plan(specs, options.shard_size)
    manifest = Manifest(kind=kind, config=config, seed=seed, n_samples=len(specs),
                        shard_size=options.shard_size, compression=options.compression,
                        shard_starts=None if shards.uniform else shards.starts)
    manifest = _prepare_out(out, manifest, options.overwrite)
    _announce(out, options)
    with _locked(out):
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
    """Delete files a killed run left under temporary names (never a finished file)."""
    for stale in out.glob(f"*{TMP_MARK}*"):
        stale.unlink(missing_ok=True)


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
            path.unlink(missing_ok=True)
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
    context, n_jobs, threads = _parallel(options)
    with context:
        while todo:
            exclude = _bad_sources(manifest)
            tasks = (joblib.delayed(_render_shard)(
                renderer, shards.shard(k), out.absolute() / shard_name(k), manifest.kind, manifest.config,
                manifest.fingerprint, k, options.compression, options.skip_bad, exclude, threads)
                for k in todo)
            results = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered",
                                      batch_size=1, pre_dispatch="2*n_jobs")(tasks)
            for entry, shard_skips in results:
                manifest.shards = [e for e in manifest.shards if e["index"] != entry["index"]]
                manifest.shards.append(entry)
                manifest.skipped.extend(shard_skips)
                manifest.save(out)
                if entry["index"] not in counted:
                    counted.add(entry["index"])
                    live.done += len(shards.shard(entry["index"]))
                    live.show()
            todo = _needing_redo(manifest, shards)


def _finish(manifest: Manifest, out: Path) -> None:
    """Sort the shards, keep one skip entry per bad source, mark complete, save."""
    manifest.shards.sort(key=lambda e: e["index"])
    # One entry per bad source: the reason found at its first sample.
    first = {}
    for entry in sorted(manifest.skipped, key=lambda s: (s.get("sample", -1), s["source"])):
        first.setdefault(entry["source"], entry)
    manifest.skipped = list(first.values())
    manifest.complete = True
    manifest.save(out)
