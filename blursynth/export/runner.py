"""Run an export: plan, check the output folder, write in parallel, resume.

The plan is cut into tasks (runs of frames of one clip); joblib runs the
pending ones, one task per call, so the files depend on the plan only and are
the same for any ``workers``. ``DIR/blursynth-export.json`` records what the
export is (its *identity*: dataset fingerprint, layout, split, selection, PNG
level, input) and whether it is complete. A re-run with the same identity
skips every task whose files are all in place (each file is renamed into place
complete) and makes the rest; a different export into the same folder is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import joblib

from blursynth.atomic import atomic_write_bytes
from blursynth.curate.selection import Selection, filter_refs, load_selection
from blursynth.errors import BlursynthError
from blursynth.export.base import ExportContext
from blursynth.export.formats import FORMATS
from blursynth.export.plan import Task, plan_clips, plan_tasks, split_of_sources
from blursynth.jsondoc import load_json
from blursynth.dataset.outdir import entries, json_bytes, output_folder, real_subfolder, remove_own, temporaries_of
from blursynth.run.pool import local_workers
from blursynth.run.progress import progress_bar
from blursynth.dataset import SampleIndex, renditions_of
from blursynth.curate.split import default_split_file, load_split

STATE = "blursynth-export.json"
STATE_FORMAT = "blursynth-export/1"


def _layout(fmt: str):
    if fmt not in FORMATS:
        raise BlursynthError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    return FORMATS[fmt]


def _run_task(fmt: str, task: Task, ctx: ExportContext) -> int:
    """Worker: write one task's files; returns its frame count (for the progress bar)."""
    import cv2

    cv2.setNumThreads(1)  # parallelism comes from the workers
    _layout(fmt).write(task, ctx)
    return len(task.frames)


def _prepare_out(out: Path, identity: dict) -> dict | None:
    """Check that ``out`` (created and locked by this run) may be resumed; the state found (or None)."""
    state_path = out / STATE
    if state_path.exists():
        state = load_json(state_path, "export state")  # a regular file, capped, limits (blursynth.jsondoc)
        if not isinstance(state, dict) or state.get("identity") != identity:
            found = state.get("identity") if isinstance(state, dict) else None
            layout = found.get("layout") if isinstance(found, dict) else None
            raise BlursynthError(f"--out {out}: holds a different export ({layout} "
                                 "of another dataset, split, selection or options); choose another folder")
        return state
    if entries(out):
        raise BlursynthError(f"--out {out}: not empty and holds no blursynth export; choose an empty folder")
    return None


def _remove_temporaries(out: Path, files: list[str]) -> None:
    """Remove what a killed run left under a temporary name: ``NAME.tmp-PID`` for each file
    NAME the export writes, in the folder it writes it to, and nothing else."""
    by_folder: dict[str, set[str]] = {".": {STATE}}
    for rel in files:
        folder, _, name = rel.rpartition("/")
        by_folder.setdefault(folder or ".", set()).add(name)
    for folder, names in by_folder.items():
        if real_subfolder(out, folder):
            remove_own(out / folder, temporaries_of(names))


def export(dataset: str | Path, fmt: str, out: str | Path, *, select: str | Path | Selection | None = None,
           split_file: str | Path | None = None, input: str = "blur", png_level: int = 1,
           workers: int | None = None, quiet: bool = False) -> dict:
    """Export ``dataset`` to layout ``fmt`` in folder ``out``.

    Parameters
    ----------
    dataset : a blursynth dataset folder.
    fmt : a key of :data:`blursynth.export.FORMATS`.
    out : the export folder; created, or resumed if it holds the same export.
    select : a selection file (or loaded :class:`Selection`) from ``blursynth filter``.
    split_file : a split file from ``blursynth split``; default ``DATASET/split.json``
        if present, else every sample goes to ``train``.
    input : the blurred rendition that single-input layouts use (``blur`` first).
    png_level : PNG compression level 0-9.
    workers : worker processes (default: all cores).
    quiet : no progress bar.

    Returns
    -------
    dict
        The content of ``out/blursynth-export.json``.
    """
    dataset, out = Path(dataset), Path(out)
    layout = _layout(fmt)
    if not 0 <= png_level <= 9:
        raise BlursynthError(f"--png-level {png_level}: must be in 0..9")
    if workers is not None and workers < 1:
        raise BlursynthError(f"--workers {workers}: must be at least 1")
    index = SampleIndex(dataset)
    index.require("blur", "sharp")
    manifest = index.manifest
    if not isinstance(select, Selection) and select is not None:
        select = load_selection(select, dataset)
    elif select is not None and select.fingerprint != manifest.fingerprint:
        raise BlursynthError("--select: the selection was made for another dataset")
    samples = filter_refs(index.refs, select)
    if not samples:
        raise BlursynthError(f"{dataset}: the dataset holds no samples")
    if split_file is None and default_split_file(dataset).exists():
        split_file = default_split_file(dataset)
    split_doc = load_split(split_file, dataset) if split_file is not None else None
    renditions = renditions_of(manifest.config)
    if input not in renditions:
        raise BlursynthError(f"--input {input}: the dataset's renditions are {', '.join(renditions)}")

    clips = plan_clips(index.runs(samples), split_of_sources(sorted({s.source for s in samples}), split_doc))
    tasks = plan_tasks(clips)
    ctx = ExportContext(dataset=dataset, out=out, renditions=renditions, input=input, png_level=png_level)
    identity = {
        "layout": fmt, "dataset_fingerprint": manifest.fingerprint, "png_level": png_level, "input": input,
        "renditions": renditions, "split": split_doc["sources"] if split_doc else None,
        "samples": [s.index for s in samples] if select is not None else "all",
    }
    state = {
        "format": STATE_FORMAT, "identity": identity, "complete": False,
        "splits": {split: {"clips": sum(c.split == split for c in clips),
                           "frames": sum(c.n_frames for c in clips if c.split == split)}
                   for split in sorted({c.split for c in clips})},
        "clips": [{"split": c.split, "name": c.name, "sequence": c.ordinal, "source": c.source,
                   "samples": [s.index for s in c.samples], "frames": c.n_frames} for c in clips],
    }
    if out.is_dir():  # refuse a folder of someone else's before putting a lock in it
        _prepare_out(out, identity)
    with output_folder(out):  # the lock (blursynth.dataset.outdir), then the check that counts
        found = _prepare_out(out, identity)
        if found is None or not found.get("complete"):
            atomic_write_bytes(out / STATE, json_bytes(state))
            _remove_temporaries(out, layout.outputs(tasks, ctx))
            pending = [t for t in tasks if not layout.done(t, ctx)]
            total = sum(len(t.frames) for t in tasks)
            with progress_bar(total, total - sum(len(t.frames) for t in pending), quiet, f"export {fmt}") as bar:
                bar.unit = "frame"
                n_jobs = min(workers or os.cpu_count() or 1, max(1, len(pending)))
                if n_jobs == 1:
                    for task in pending:
                        bar.update(_run_task(fmt, task, ctx))
                else:
                    with local_workers():
                        run = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
                        done = run(joblib.delayed(_run_task)(fmt, t, ctx) for t in pending)
                    for frames in done:
                        bar.update(frames)
            layout.finish(tasks, ctx)
            state["complete"] = True
            atomic_write_bytes(out / STATE, json_bytes(state))
        cleanup = getattr(layout, "cleanup", None)
        if cleanup is not None:
            cleanup(ctx)
    return state
