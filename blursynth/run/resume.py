"""What a re-run keeps: the dataset already in ``--out``, its finished shards, and the
shards a source found bad since makes stale (``--skip-bad``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from blursynth.dataset import (FORMAT_VERSION, MANIFEST, Manifest, is_own_file, is_temporary, open_shard,
                               recorded_sources, shard_name)
from blursynth.atomic import file_sha256
from blursynth.dataset.outdir import entries as out_entries
from blursynth.dataset.outdir import remove_own
from blursynth.errors import BlursynthError
from blursynth.run.shard_task import ShardCut
from blursynth.sources import stamps


def existing_shard_entry(path: Path, manifest: Manifest, index: int, recorded: dict | None):
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


def prepare_out(out: Path, manifest: Manifest, overwrite: bool) -> Manifest:
    """Check that ``out`` (locked by this run) may be (re)used; return the manifest to continue.

    With ``overwrite``, only files blursynth can prove are its own
    (:func:`blursynth.dataset.format.is_own_file`) are deleted.
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


def remove_temporaries(out: Path) -> None:
    """Delete files a killed run left under blursynth's temporary names (never a
    finished file, never a user's ``*.tmp-*``: see :func:`blursynth.dataset.format.is_temporary`)."""
    remove_own(out, is_temporary)


def resume(out: Path, manifest: Manifest, planned_skips: Sequence[dict]) -> tuple[list[int], set[int]]:
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
        entry = existing_shard_entry(path, manifest, k, recorded.get(k))
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


def bad_sources(manifest: Manifest) -> frozenset:
    """Sources found bad while rendering (``--skip-bad``)."""
    return frozenset(s["source"] for s in manifest.skipped if "sample" in s)


def needing_redo(manifest: Manifest, shards: ShardCut) -> list[int]:
    """Finished shards that hold samples of a source found bad since they were made.

    --skip-bad drops a whole source: a shard written before a bad frame of one
    of its sources was found elsewhere is made again without it, so the result
    depends only on which sources are bad, not on the order in which work
    finished (or on where an earlier run was killed).
    """
    bad = bad_sources(manifest)
    redo = []
    for entry in manifest.shards:
        sources = {spec.source for spec in shards.shard(entry["index"])}
        if (sources & bad) - set(entry.get("excluded", ())):
            redo.append(entry["index"])
    return redo

