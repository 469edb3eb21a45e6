"""Split a dataset into train/val/test by source, without copying data.

Every sample carries ``meta/source`` (the clip or panorama it was cut from).
Frames of one source are strongly correlated, so a model scored on a source it
trained on is scored on what it memorized; the split therefore assigns whole
sources to splits. The result is a small JSON file listing the sources of each
split (the samples follow from ``meta/source``), written atomically.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np

from blursynth.errors import BlursynthError
from blursynth.atomic import atomic_write_bytes
from blursynth.shards import Manifest

SPLIT_FORMAT = "blursynth-split/1"
SPLIT_FILE = "split.json"
SPLITS = ("train", "val", "test")


def split_sources(counts: dict[str, int], val: float, test: float, seed: int) -> dict[str, list[str]]:
    """Assign whole sources to train/val/test so that sample fractions approach ``val`` and ``test``.

    Sources are shuffled with ``default_rng(seed)`` (after sorting, so the result
    does not depend on the order of ``counts``) and laid end to end by sample
    count; a source goes to test if the middle of its stretch falls in the first
    ``test`` fraction, to val if in the next ``val`` fraction, else to train.
    A split with a positive fraction gets at least one source, and train always does.

    Args:
        counts: samples per source.
        val, test: fractions of the samples, each in [0, 1), sum < 1.
        seed: shuffle seed.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each sorted.
    """
    for name, frac in (("val", val), ("test", test)):
        if not 0.0 <= frac < 1.0:
            raise BlursynthError(f"--{name} {frac}: must be in [0, 1)")
    if val + test >= 1.0:
        raise BlursynthError(f"--val {val} + --test {test} leave nothing to train on")
    names = sorted(counts)
    wanted = 1 + (val > 0) + (test > 0)
    if len(names) < wanted:
        raise BlursynthError(f"the dataset has {len(names)} source(s); a split into {wanted} parts "
                             "by source needs at least one source per part")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    total = float(sum(counts[s] for s in order))
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    done = 0.0
    for source in order:
        mid = (done + counts[source] / 2.0) / total
        done += counts[source]
        out["test" if mid < test else "val" if mid < test + val else "train"].append(source)
    # Guarantee non-empty parts: move one source from the largest part.
    for name, frac in (("test", test), ("val", val), ("train", 1.0)):
        if frac > 0 and not out[name]:
            donor = max((n for n in SPLITS if n != name and len(out[n]) > 1), key=lambda n: len(out[n]))
            out[name].append(out[donor].pop())
    return {k: sorted(v) for k, v in out.items()}


def sample_across_sources(refs: list, n: int | None, seed: int) -> list:
    """At most ``n`` of ``refs``, drawn with ``seed`` and spread across their sources.

    Sources are visited in a seeded order, round-robin, each giving one of its
    samples (in a seeded order) per round, so a small draw covers as many
    sources as it can instead of the first few sources in index order. The
    result is in index order. ``n=None`` or ``n >= len(refs)`` keeps all.
    """
    if n is None or n >= len(refs):
        return list(refs)
    rng = np.random.default_rng(seed)
    by_source: dict[str, list] = {}
    for ref in refs:
        by_source.setdefault(ref.source, []).append(ref)
    queues = []
    for source in [sorted(by_source)[i] for i in rng.permutation(len(by_source))]:
        members = by_source[source]
        queues.append([members[i] for i in rng.permutation(len(members))])
    picked = []
    while len(picked) < n:
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return sorted(picked, key=lambda r: r.index)


def make_split(dataset: str | Path, val: float = 0.1, test: float = 0.1, seed: int = 0,
               out: str | Path | None = None) -> Path:
    """Split ``dataset`` by source and write the split file (default ``DATASET/split.json``).

    Returns the path written.
    """
    from reference_models.data import ShardIndex

    index = ShardIndex(dataset)
    counts = Counter(r.source for r in index.refs)
    parts = split_sources(dict(counts), val, test, seed)
    doc = {
        "format": SPLIT_FORMAT,
        "dataset_fingerprint": index.manifest.fingerprint,
        "seed": seed, "val": val, "test": test,
        "n_samples": {k: sum(counts[s] for s in v) for k, v in parts.items()},
        "sources": parts,
    }
    path = Path(out) if out is not None else Path(dataset) / SPLIT_FILE
    try:
        atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode())
    except OSError as exc:
        raise BlursynthError(f"{path}: cannot write the split file ({exc.strerror}); "
                             "pass --out FILE elsewhere") from None
    return path


def load_split(path: str | Path, dataset: str | Path | None = None) -> dict:
    """Read a split file; with ``dataset``, check that it was made for that dataset."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BlursynthError(f"{path}: no split file (make one with 'blursynth split DATASET')") from None
    except (OSError, ValueError) as exc:
        raise BlursynthError(f"{path}: unreadable split file ({exc})") from None
    if doc.get("format") != SPLIT_FORMAT:
        raise BlursynthError(f"{path}: format {doc.get('format')!r} is not {SPLIT_FORMAT}")
    if dataset is not None:
        fingerprint = Manifest.load(dataset).fingerprint
        if doc.get("dataset_fingerprint") != fingerprint:
            raise BlursynthError(f"{path}: the split was made for another dataset than {dataset}; "
                                 "make a new one with 'blursynth split'")
    return doc


def default_split_file(dataset: str | Path) -> Path:
    return Path(dataset) / SPLIT_FILE


def split_sources_of(doc: dict, name: str, path: str | Path = "split file") -> list[str]:
    """The sources of split ``name`` in a loaded split file."""
    if name not in doc["sources"]:
        raise BlursynthError(f"--split {name}: {path} has {', '.join(doc['sources'])}")
    if not doc["sources"][name]:
        raise BlursynthError(f"--split {name}: the split is empty in {path}")
    return doc["sources"][name]
