"""Look at a dataset as a whole: :func:`describe` (``info``) and :func:`verify` (``verify``)."""

from __future__ import annotations

from pathlib import Path

from blursynth.atomic import file_sha256
from blursynth.dataset.format import frame_arrays, renditions_of
from blursynth.dataset.manifest import Manifest
from blursynth.dataset.reader import SampleIndex
from blursynth.dataset.shard import open_shard, reading, recorded_sources
from blursynth.errors import BlursynthError
from blursynth.sources import stamps

__all__ = ["describe", "verify"]


def describe(out: Path) -> dict:
    """A summary of a dataset, as a whole and per source (the ``info`` command).

    Parameters
    ----------
    out : Path
        The dataset folder.

    Returns
    -------
    dict
        ``kind``, ``complete``, ``samples`` (written), ``planned``, ``shards``,
        ``skipped`` (count), ``sample_shape`` (per frame array, from the first
        shard), ``frame_sizes`` (``"WxH"`` -> samples), ``bytes`` (shard files),
        ``seed``, ``config`` and ``sources``: per source id, its ``samples``,
        ``frame_sizes``, ``bytes`` (its share of each shard, by sample count:
        frames of one shard all have one size) and, for highspeed data,
        ``tau_T`` (``"tau/T"`` -> samples). JSON-serializable.
    """
    index = SampleIndex(out)  # meta only: no shard stays open
    manifest = index.manifest
    shapes, sizes, sources, total_bytes = {}, {}, {}, 0
    for info in index.shards.values():  # shard order
        shard_bytes = (index.root / info.file).stat().st_size
        total_bytes += shard_bytes
        if not shapes:
            shapes = {name: list(shape) for name, shape in info.shapes.items()}
        n, meta = info.samples, info.meta
        if not n:
            continue
        if "blur" not in info.shapes:
            raise BlursynthError(f"{index.root / info.file}: no blur frames")
        size = f"{info.shapes['blur'][2]}x{info.shapes['blur'][1]}"
        sizes[size] = sizes.get(size, 0) + n
        for row in range(n):
            of = sources.setdefault(str(meta["source"][row]), {"samples": 0, "frame_sizes": {}, "bytes": 0})
            of["samples"] += 1
            of["frame_sizes"][size] = of["frame_sizes"].get(size, 0) + 1
            of["bytes"] += shard_bytes / n
            if "tau" in meta and "T" in meta:
                key = f"{int(meta['tau'][row])}/{int(meta['T'][row])}"
                hist = of.setdefault("tau_T", {})
                hist[key] = hist.get(key, 0) + 1
    for of in sources.values():
        of["bytes"] = int(round(of["bytes"]))
    return {
        "kind": manifest.kind, "complete": manifest.complete,
        "samples": sum(s["samples"] for s in manifest.shards), "planned": manifest.n_samples,
        "shards": len(manifest.shards), "skipped": len(manifest.skipped), "sample_shape": shapes,
        "frame_sizes": sizes, "bytes": total_bytes, "seed": manifest.seed, "config": manifest.config,
        "sources": dict(sorted(sources.items())),
    }


def verify(out: Path, sources: bool = False) -> list[str]:
    """Check every shard against the manifest (and with ``sources``, its source files).

    Parameters
    ----------
    out : Path
        The dataset folder.
    sources : bool
        Also check that every source file a shard records (``source_files``,
        :mod:`blursynth.sources.stamps`) still has the size and modification
        time it had when the shard was made (``verify --sources``).

    Returns
    -------
    list of str
        One line per problem, naming the shard: an incomplete run, a missing,
        modified (sha256) or unreadable shard, a rendition the config records
        (``blur_<curve>``) missing from a shard, or sample counts that differ
        between the manifest and the shard (every frame array, renditions
        included); with ``sources``, a source file that changed or is gone
        (once per file), or a shard that records none; empty when the dataset
        is fine.
    """
    manifest = Manifest.load(out)
    problems = []
    if not manifest.complete:
        problems.append("the dataset is incomplete (re-run the same command to resume)")
    seen, checked = set(), set()  # shard indices; source files already checked
    for entry in manifest.shards:
        name, path = entry["file"], manifest.shard_path(out, entry)
        if entry["index"] in seen or entry["index"] >= max(manifest.n_shards, 1):
            problems.append(f"{name}: shard index {entry['index']} is repeated or beyond the "
                            f"{manifest.n_shards} shards planned")
        seen.add(entry["index"])
        if not path.exists():
            problems.append(f"{name}: missing")
            continue
        if file_sha256(path) != entry["sha256"]:
            problems.append(f"{name}: sha256 mismatch (corrupted or modified)")
            continue  # one line per damaged shard; what else is wrong inside it does not matter
        try:
            counts = _shard_counts(path)
        except BlursynthError as exc:
            problems.append(str(exc).replace(f"{path}: ", f"{name}: ", 1))
            continue
        missing = [array for array in renditions_of(manifest.config) if array not in counts]
        if missing and entry["samples"]:
            problems.append(f"{name}: no {missing[0]} array, though the config records its response curve")
            continue
        if set(counts.values()) != {entry["samples"]}:
            values = set(counts.values())
            found = str(values.pop()) if len(values) == 1 else \
                ", ".join(f"{k}: {v}" for k, v in counts.items() if v != entry["samples"])
            problems.append(f"{name}: the manifest says {entry['samples']} samples, the shard holds {found}")
            continue
        if sources:
            problems.extend(_source_problems(path, name, checked))
    written = sum(e["samples"] for e in manifest.shards)
    if written > manifest.n_samples or (manifest.complete and not manifest.skipped
                                        and written != manifest.n_samples):
        problems.append(f"the shards hold {written} samples, the manifest plans {manifest.n_samples}")
    return problems


def _source_problems(path: Path, name: str, checked: set[str]) -> list[str]:
    """One line per source file of shard ``path`` that changed since it was made
    (files in ``checked`` are skipped, and the ones seen here added)."""
    try:
        recorded = recorded_sources(path)
    except (BlursynthError, ValueError) as exc:
        return [f"{name}: unreadable record of source files ({exc})".replace(f"{path}: ", "", 1)]
    if recorded is None:
        return [f"{name}: records no source files (made by an older blursynth); its sources cannot be checked"]
    problems = []
    for stamp in recorded:
        if stamp[0] in checked:
            continue
        checked.add(stamp[0])
        what = stamps.change(stamp)
        if what is not None:
            problems.append(f"{name}: source file {stamp[0]} {what} since the shard was made from it")
    return problems


def _shard_counts(path: Path) -> dict[str, int]:
    """Samples a shard says it holds (``attrs``) and the lengths of its arrays."""
    with open_shard(path) as f, reading(path):
        counts = {"attrs": int(f.attrs["samples"])}
        for name in frame_arrays(f):
            counts[name] = len(f[name])
        for key, ds in f["meta"].items():
            counts[f"meta/{key}"] = len(ds)
    return counts
