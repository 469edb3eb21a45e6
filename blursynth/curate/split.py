"""Split a dataset into train/val/test by source, without copying data (the split file).

Every sample carries ``meta/source`` (the clip or panorama it was cut from).
Frames of one source are strongly correlated, so a model scored on a source it
trained on is scored on what it memorized; the split therefore assigns whole
sources to splits. The result is a small JSON file listing the sources of each
split (the samples follow from ``meta/source``), written atomically.

File format (``blursynth-split/1``)::

    {"format": "blursynth-split/1", "dataset_fingerprint": "...", "seed": 0,
     "val": 0.1, "test": 0.1, "n_samples": {"train": ..., "val": ..., "test": ...},
     "sources": {"train": [...], "val": [...], "test": [...]}}

It also holds the seeded draw of samples across sources
(:func:`draw_across_sources`) that ``preview`` and the reference models share.

This module needs numpy only, so ``export`` and ``report`` read split files
without importing torch; the reference models use it through
:mod:`reference_models.heldout`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from blursynth.curate.selection import Selection, sample_sources
from blursynth.errors import BlursynthError
from blursynth.jsondoc import Map, read_doc
from blursynth.dataset.outdir import OutputMarker, check_output_file, json_bytes, write_output
from blursynth.dataset import Manifest

SPLIT_FORMAT = "blursynth-split/1"
SPLIT_FILE = "split.json"
SPLITS = ("train", "val", "test")
# What ``split`` writes, and how it knows a file it wrote (blursynth.dataset.outdir).
SPLIT_OUT = OutputMarker.json("blursynth split", SPLIT_FORMAT)
# What a split file holds besides its format and fingerprint (blursynth.jsondoc.check_schema).
SPLIT_SCHEMA = {"sources": Map([str], keys=SPLITS)}


def split_sources(counts: dict[str, int], val: float, test: float, seed: int) -> dict[str, list[str]]:
    """Assign whole sources to train/val/test so that sample fractions approach ``val`` and ``test``.

    Sources are shuffled with ``default_rng(seed)`` (after sorting, so the result
    does not depend on the order of ``counts``) and laid end to end by sample
    count; a source goes to test if the middle of its stretch falls in the first
    ``test`` fraction, to val if in the next ``val`` fraction, else to train.
    A split with a positive fraction gets at least one source, and train always does.

    Parameters
    ----------
    counts : dict of str to int
        Samples per source.
    val, test : float
        Fractions of the samples, each in [0, 1), sum < 1.
    seed : int
        Shuffle seed.

    Returns
    -------
    dict of str to list of str
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
                             "by source needs at least one source per part: split into fewer parts "
                             "(a fraction of 0 leaves its part out), or make the dataset from more clips "
                             "or panoramas ('blursynth sample DIR --clips K' writes K clips)")
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


def draw_across_sources(sources: Sequence[str], n: int | None, seed: int) -> list[int]:
    """Positions of at most ``n`` samples, drawn with ``seed`` and spread across their sources.

    blursynth's one seeded draw across sources: the rows of a contact sheet
    (``preview``) and the validation and evaluation samples of the reference
    models (:func:`reference_models.heldout.sample_across_sources`) are drawn here.

    The sources are visited in a seeded order, round after round, each giving
    one of its samples (in a seeded order) per round, so a small draw covers as
    many sources as it can instead of the first few sources in index order.

    Parameters
    ----------
    sources : sequence of str
        The source of each sample, by position.
    n : int or None
        Samples wanted; ``None`` or more than there are: all of them.
    seed : int
        The draw's seed (``numpy.random.default_rng``): first the order of the
        sources (a permutation of their sorted names), then the order of the
        samples of each source, in the order the sources are visited.

    Returns
    -------
    list of int
        Positions into ``sources``, in the order drawn (the first round first),
        none twice.

    Examples
    --------
    >>> sorted(draw_across_sources(["a", "a", "a", "b"], 2, seed=0)) in ([0, 3], [1, 3], [2, 3])
    True
    """
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[int]] = {}
    for i, source in enumerate(sources):
        by_source.setdefault(source, []).append(i)
    names = sorted(by_source)
    queues = []
    for source in [names[i] for i in rng.permutation(len(names))]:
        members = by_source[source]
        queues.append([members[i] for i in rng.permutation(len(members))])
    n = len(sources) if n is None else min(n, len(sources))
    picked: list[int] = []
    while len(picked) < n:
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return picked


def make_split(dataset: str | Path, val: float = 0.1, test: float = 0.1, seed: int = 0,
               out: str | Path | None = None, select: Selection | None = None, overwrite: bool = False) -> Path:
    """Split ``dataset`` by source and write the split file (default ``DATASET/split.json``).

    With ``select`` (:func:`blursynth.curate.selection.load_selection`), only the
    selected samples are counted, so the split covers the sources the
    selection keeps and its fractions are fractions of the selected samples.
    An existing ``out`` that ``blursynth split`` did not write is refused
    unless ``overwrite``, a dataset's own file always
    (:func:`blursynth.dataset.outdir.check_output_file`).

    Returns the path written.
    """
    path = Path(out) if out is not None else default_split_file(dataset)
    check_output_file(path, SPLIT_OUT, overwrite=overwrite)
    index = sample_sources(dataset)
    if select is not None:
        index = {i: s for i, s in index.items() if i in select.indices}
    counts = Counter(index.values())
    if not counts:
        raise BlursynthError(f"{dataset}: no samples to split" + (" in the selection" if select else ""))
    parts = split_sources(dict(counts), val, test, seed)
    doc = {
        "format": SPLIT_FORMAT,
        "dataset_fingerprint": Manifest.load(dataset).fingerprint,
        "seed": seed, "val": val, "test": test,
        "n_samples": {k: sum(counts[s] for s in v) for k, v in parts.items()},
        "sources": parts,
    }
    return write_output(path, json_bytes(doc), SPLIT_OUT, overwrite=overwrite)


def load_split(path: str | Path, dataset: str | Path | None = None) -> dict:
    """Read a split file; with ``dataset``, check that it was made for that dataset.

    Raises
    ------
    BlursynthError
        Missing, unreadable, of another format or made for another dataset
        (:func:`blursynth.jsondoc.read_doc`); without a ``sources`` object of
        lists of source ids keyed by ``train``, ``val``, ``test``; or with
        parts that overlap (one source in two parts): every reader (export,
        report, train-reference, eval-reference) refuses it.
    """
    doc = read_doc(path, SPLIT_FORMAT, name=str(path), what="split file", make="blursynth split DATASET",
                   schema=SPLIT_SCHEMA, dataset=dataset,
                   fingerprint=None if dataset is None else Manifest.load(dataset).fingerprint)
    # A split is a partition: a source in two parts would be trained on and scored on.
    seen: dict[str, str] = {}
    for part, members in doc["sources"].items():
        for source in members:
            if seen.setdefault(source, part) != part:
                raise BlursynthError(f"{path}: source {source!r} is in both {seen[source]} and {part}; the "
                                     "parts of a split must not overlap (make a new one with "
                                     "'blursynth split DATASET')")
    return doc


def default_split_file(dataset: str | Path) -> Path:
    """Where a dataset's own split file lives: ``DATASET/split.json``."""
    return Path(dataset) / SPLIT_FILE


def split_sources_of(doc: dict, name: str, path: str | Path = "split file") -> list[str]:
    """The sources of split ``name`` in a loaded split file."""
    if name not in doc["sources"]:
        raise BlursynthError(f"--split {name}: {path} has {', '.join(doc['sources'])}")
    if not doc["sources"][name]:
        raise BlursynthError(f"--split {name}: the split is empty in {path}")
    return doc["sources"][name]
