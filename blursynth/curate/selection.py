"""Curation: a selection of sample ids, made by ``blursynth filter`` and read by every consumer.

A selection is a small JSON file; it copies no data. ``export``, ``report``,
``train-reference``, ``validate`` and ``eval-reference`` take it with ``--select FILE`` and use only
the samples it lists (through :func:`load_selection` and :func:`filter_refs`).

File format (``blursynth-selection/1``)::

    {"format": "blursynth-selection/1", "dataset_fingerprint": "...",
     "criteria": {...}, "n_samples": 123, "n_total": 456, "indices": [0, 3, ...]}

``indices`` are global sample indices (``meta/index``), sorted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, TypeVar

from blursynth.errors import BlursynthError
from blursynth.jsondoc import NON_NEGATIVE, Opt, read_doc
from blursynth.curate.measures import has_consecutive_frames, measure_dataset
from blursynth.dataset.outdir import OutputMarker, json_bytes, write_output
from blursynth.dataset import Manifest, SampleIndex

SELECTION_FORMAT = "blursynth-selection/1"
# What ``filter`` writes, and how it knows a file it wrote (blursynth.dataset.outdir).
SELECTION_OUT = OutputMarker.json("blursynth filter", SELECTION_FORMAT)

Ref = TypeVar("Ref")
# What a selection holds besides its format and fingerprint (blursynth.jsondoc.check_schema):
# indices are integers, never true, 1.9 or "3".
SELECTION_SCHEMA = {"indices": [NON_NEGATIVE], "criteria": Opt(dict), "n_total": Opt(NON_NEGATIVE)}


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
        The file is missing, not a regular file, unreadable, of another
        format, of the wrong types (indices must be non-negative integers:
        ``true``, ``1.9`` or ``"3"`` are refused, not coerced), made for
        another dataset, or (with ``dataset``) names samples the dataset does
        not hold (the message names ``--select`` and the file).
    """
    name = f"--select {path}"
    doc = read_doc(path, SELECTION_FORMAT, name=name, what="selection", make="blursynth filter",
                   schema=SELECTION_SCHEMA, dataset=dataset,
                   fingerprint=None if dataset is None else Manifest.load(dataset).fingerprint)
    indices = frozenset(doc["indices"])
    selection = Selection(indices, doc["dataset_fingerprint"], doc.get("criteria", {}),
                          doc.get("n_total", len(indices)))
    if dataset is not None:
        unknown = sorted(selection.indices - set(sample_sources(dataset)))
        if unknown:
            raise BlursynthError(f"{name}: sample {unknown[0]} is not in {dataset} ({len(unknown)} of the "
                                 f"selection's {len(indices)} samples are not); run 'blursynth filter' again")
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


def sample_sources(dataset: str | Path | SampleIndex) -> dict[int, str]:
    """``{sample index: source}`` of every sample of ``dataset`` (meta only)."""
    index = dataset if isinstance(dataset, SampleIndex) else SampleIndex(dataset)
    return {ref.index: ref.source for ref in index.refs}


def write_selection(selection: Selection, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``selection`` to ``path`` atomically (:func:`blursynth.dataset.outdir.write_output`).

    An existing ``path`` that is not a selection (``blursynth filter`` did not
    write it) is refused unless ``overwrite``; a dataset's own file always.
    """
    return write_output(path, json_bytes(selection.to_json()), SELECTION_OUT, overwrite=overwrite)


def _source_list(sources: str | Iterable[str] | None) -> list[str] | None:
    if sources is None:
        return None
    items = [s for s in (sources.split(",") if isinstance(sources, str) else sources) if s]
    if not items:
        raise BlursynthError("--sources: the list is empty")
    return items


def select_samples(dataset: str | Path, *, min_blur_psnr: float | None = None, max_blur_psnr: float | None = None,
                   max_motion: float | None = None, max_clipped: float | None = None,
                   sources: str | Iterable[str] | None = None, workers: int | None = None,
                   quiet: bool = True) -> Selection:
    """Choose the samples of ``dataset`` that pass every given criterion (``blursynth filter``).

    Parameters
    ----------
    dataset : a blursynth dataset folder.
    min_blur_psnr, max_blur_psnr : keep samples whose PSNR of blur vs sharp (dB) is within
        these bounds: a low PSNR is a strong blur, a high one hardly any.
    max_motion : keep samples whose motion score (px per source frame,
        :func:`blursynth.curate.measures.motion_score`) is at most this; the dataset must hold
        consecutive frames.
    max_clipped : keep samples whose fraction of saturated blurred pixels is at most this.
    sources : keep only these sources (ids, or a comma-separated string).
    workers, quiet : parallelism and progress bar of the measures.

    Returns
    -------
    Selection
        With ``criteria`` recording the arguments given.
    """
    dataset = Path(dataset)
    samples = SampleIndex(dataset)  # read once: sources, shapes and meta for every step below
    wanted = _source_list(sources)
    for name, value in (("--min-blur-psnr", min_blur_psnr), ("--max-blur-psnr", max_blur_psnr),
                        ("--max-motion", max_motion), ("--max-clipped", max_clipped)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise BlursynthError(f"{name} {value}: must be a non-negative number")
    if max_motion is not None and not has_consecutive_frames(samples):
        raise BlursynthError(f"--max-motion: {dataset} holds no consecutive frames (no latent frames, "
                             "no sequences), so its samples have no motion score")
    index = sample_sources(samples)
    if wanted is not None:
        unknown = sorted(set(wanted) - set(index.values()))
        if unknown:
            raise BlursynthError(f"--sources: {unknown[0]!r} is not a source of {dataset}")
        index = {i: s for i, s in index.items() if s in set(wanted)}
    measured = any(v is not None for v in (min_blur_psnr, max_blur_psnr, max_motion, max_clipped))
    keep = set(index)
    if measured and keep:
        measures = measure_dataset(samples, keep, motion=max_motion is not None, workers=workers, quiet=quiet)

        def passes(m: dict) -> bool:
            return ((min_blur_psnr is None or m["psnr"] >= min_blur_psnr)
                    and (max_blur_psnr is None or m["psnr"] <= max_blur_psnr)
                    and (max_motion is None or (m["motion"] is not None and m["motion"] <= max_motion))
                    and (max_clipped is None or m["clipped_high"] <= max_clipped))

        keep = {i for i, m in measures.items() if passes(m)}
    criteria = {k: v for k, v in (("min_blur_psnr", min_blur_psnr), ("max_blur_psnr", max_blur_psnr),
                                  ("max_motion", max_motion), ("max_clipped", max_clipped),
                                  ("sources", wanted)) if v is not None}
    return Selection(frozenset(keep), samples.manifest.fingerprint, criteria, len(samples))
