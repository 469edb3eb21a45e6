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
import os
import sys
import warnings
from pathlib import Path
from typing import Sequence

import joblib

import blursynth.budget as budget
import blursynth.run.cluster as cluster
from blursynth.dataset import Manifest, shard_name
from blursynth.dataset.outdir import output_folder
from blursynth.errors import BlursynthError, note
from blursynth.run.pool import local_workers
from blursynth.run.options import RunOptions
from blursynth.run.progress import LiveProgress, progress_bar
from blursynth.run.resume import bad_sources, needing_redo, prepare_out, remove_temporaries, resume
from blursynth.run.shard_task import Renderer, ShardCut, ShardJob, render_shard
from blursynth.run.signals import spawning_ignores_sigint, stop_on_sigterm


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


def run(kind: str, config: dict, seed: int, specs: Sequence, renderer: Renderer,
        options: RunOptions, skipped: Sequence[dict] = (), sources: Sequence[dict] = (),
        announce: Sequence[str] = ()) -> Manifest:
    """Render ``specs`` with ``renderer`` into shards under ``options.out``.

    The steps: prepare ``--out`` (:func:`~blursynth.run.resume.prepare_out`), keep the finished
    shards of an earlier run (:func:`~blursynth.run.resume.resume`), find shards that hold a source
    found bad since (:func:`~blursynth.run.resume.needing_redo`), render the rest on the backend
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
    shards = ShardCut(specs, options.shard_size)
    manifest = Manifest(kind=kind, config=config, seed=seed, n_samples=len(specs),
                        shard_size=options.shard_size, compression=options.compression,
                        shard_starts=None if shards.uniform else shards.starts)
    # The folder's lock (blursynth.dataset.outdir) before anything is deleted.
    with output_folder(out), stop_on_sigterm(), _disk_full_is_one_line(out):
        manifest = prepare_out(out, manifest, options.overwrite)
        manifest.sources = [dict(s) for s in sources]
        _announce(out, options, announce)
        remove_temporaries(out)
        todo, kept = resume(out, manifest, skipped)
        if kept and not options.quiet:
            print(f"blursynth: resuming: {len(kept)} of {manifest.n_shards} shards done", file=sys.stderr)
        manifest.save(out)
        todo += needing_redo(manifest, shards)
        done = sum(len(shards.shard(k)) for k in kept)
        live = LiveProgress(progress_bar(len(specs), done, options.quiet, kind), out, done)
        try:
            _render_all(todo, manifest, shards, renderer, options, out, live, counted=set(kept))
        finally:
            live.finish()
            remove_temporaries(out)
        _finish(manifest, out)
    return manifest


def _render_all(todo: list[int], manifest: Manifest, shards: ShardCut, renderer: Renderer,
                options: RunOptions, out: Path, live: LiveProgress, counted: set[int]) -> None:
    """Render the shards in ``todo`` on the backend, recording each as it finishes.

    Repeats for the shards that a source found bad during the round makes
    stale (:func:`~blursynth.run.resume.needing_redo`) until there are none.
    """
    context, n_jobs, threads = _parallel(options, len(todo))
    with context:
        while todo:
            exclude = bad_sources(manifest)
            tasks = (joblib.delayed(render_shard)(ShardJob(
                renderer=renderer, specs=shards.shard(k), path=out.absolute() / shard_name(k), kind=manifest.kind,
                config=manifest.config, fingerprint=manifest.fingerprint, index=k,
                compression=options.compression, skip_bad=options.skip_bad, exclude=exclude, threads=threads,
                parent=os.getpid() if options.backend == "loky" else None, writers=max(1, n_jobs)))
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
            todo = needing_redo(manifest, shards)


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
