"""Curation: a selection of sample ids, made by ``blursynth filter`` and read by every consumer.

A selection is a small JSON file; it copies no data. ``export``, ``report``
(and the reference-model commands, through :func:`filter_refs`) take it with
``--select FILE`` and use only the samples it lists.

File format (``blursynth-selection/1``)::

    {"format": "blursynth-selection/1", "dataset_fingerprint": "...",
     "criteria": {...}, "n_samples": 123, "n_total": 456, "indices": [0, 3, ...]}

``indices`` are global sample indices (``meta/index``), sorted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, TypeVar

from blursynth.errors import BlursynthError
from blursynth.atomic import atomic_write_bytes
from blursynth.shards import Manifest

SELECTION_FORMAT = "blursynth-selection/1"

Ref = TypeVar("Ref")


@dataclass(frozen=True)
class Selection:
    """Sample indices chosen from one dataset, and why."""

    indices: frozenset[int]
    fingerprint: str
    criteria: dict
    n_total: int

    def to_json(self) -> dict:
        return {"format": SELECTION_FORMAT, "dataset_fingerprint": self.fingerprint,
                "criteria": self.criteria, "n_samples": len(self.indices), "n_total": self.n_total,
                "indices": sorted(self.indices)}


def load_selection(path: str | Path, dataset: str | Path | None = None) -> Selection:
    """Read a selection file; with ``dataset``, check that it was made for that dataset.

    Raises
    ------
    BlursynthError
        The file is missing, unreadable, of another format, or made for another dataset
        (the message names ``--select`` and the file).
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise BlursynthError(f"--select {path}: no such file (make one with 'blursynth filter')") from None
    except (OSError, ValueError) as exc:
        raise BlursynthError(f"--select {path}: unreadable selection ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != SELECTION_FORMAT:
        raise BlursynthError(f"--select {path}: not a {SELECTION_FORMAT} file")
    try:
        indices = frozenset(int(i) for i in doc["indices"])
        selection = Selection(indices, str(doc["dataset_fingerprint"]), dict(doc.get("criteria", {})),
                              int(doc.get("n_total", len(indices))))
    except (KeyError, TypeError, ValueError) as exc:
        raise BlursynthError(f"--select {path}: malformed selection ({exc})") from None
    if dataset is not None and Manifest.load(dataset).fingerprint != selection.fingerprint:
        raise BlursynthError(f"--select {path}: made for another dataset than {dataset}; "
                             "run 'blursynth filter' on this one")
    return selection


def filter_refs(refs: Iterable[Ref], selection: Selection | None, where: str = "--select") -> list[Ref]:
    """The refs (anything with an ``index`` attribute) whose sample is in ``selection``.

    ``None`` keeps every ref. An empty result raises :class:`BlursynthError`.
    """
    refs = list(refs)
    if selection is None:
        return refs
    kept = [r for r in refs if r.index in selection.indices]
    if not kept:
        raise BlursynthError(f"{where}: the selection keeps none of the dataset's samples")
    return kept


def write_selection(selection: Selection, path: str | Path) -> Path:
    """Write ``selection`` to ``path`` atomically."""
    path = Path(path)
    try:
        atomic_write_bytes(path, (json.dumps(selection.to_json(), indent=1) + "\n").encode())
    except OSError as exc:
        raise BlursynthError(f"--out {path}: cannot write the selection ({exc.strerror})") from None
    return path
