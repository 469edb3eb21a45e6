"""The figures of a dataset report, as one JSON-ready dict (``report.json``).

The HTML page (:mod:`blursynth.report.render`) is drawn from this dict and
nothing else, so the page and ``report.json`` always show the same numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from blursynth.curate.selection import Selection, filter_refs, load_selection
from blursynth.errors import BlursynthError
from blursynth.curate.measures import measure_dataset
from blursynth.dataset import SampleIndex, SampleRef
from blursynth.curate.split import default_split_file, load_split

REPORT_FORMAT = "blursynth-report/1"
# Per-sample meta fields whose distribution the report shows: discrete ones as
# value counts, continuous ones as histograms.
DISCRETE = ("tau", "T", "n_frames")
CONTINUOUS = ("angle_deg",)
HIST_BINS = 20
MEASURES = ("psnr", "mad", "clipped_high", "clipped_low", "motion")


def _finite(x):
    """JSON has no infinity: an infinite PSNR (blur equals sharp) is written as null."""
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def summary(values: list[float]) -> dict | None:
    vals = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if vals.size == 0:
        return None
    return {"n": int(vals.size), "min": float(vals.min()), "median": float(np.median(vals)),
            "mean": float(vals.mean()), "max": float(vals.max())}


def histogram(values: list[float], bins: int = HIST_BINS) -> dict | None:
    vals = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if vals.size == 0:
        return None
    counts, edges = np.histogram(vals, bins=bins)
    return {"edges": edges.tolist(), "counts": counts.tolist()}


def read_index(index: SampleIndex, refs: list[SampleRef]) -> list[dict]:
    """The meta (scalars and per-frame lists) and frame shape of samples ``refs``, one dict each."""
    index.require("blur")
    rows = []
    for ref in refs:
        shapes = index.shards[ref.file].shapes
        frames, height, width = shapes["blur"][:3]
        item = {k: v.tolist() if isinstance(v, np.ndarray) else v.item() if hasattr(v, "item") else v
                for k, v in index.meta(ref).items()}
        item.update(index=ref.index, file=ref.file, row=ref.row, frames=frames, height=height, width=width,
                    latent=shapes["latent"][1] if "latent" in shapes else 0)
        rows.append(item)
    return rows


def pick_grids(measures: dict[int, dict], n: int, seed: int) -> dict[str, list[int]]:
    """Sample indices of the strongest (lowest PSNR), weakest (highest PSNR) and random samples."""
    order = sorted(measures, key=lambda i: (measures[i]["psnr"], i))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(order), size=min(n, len(order)), replace=False)
    return {"strongest": order[:n], "weakest": order[::-1][:n], "random": sorted(order[k] for k in chosen)}


def collect(dataset: str | Path, *, select: str | Path | Selection | None = None, grid: int = 4, seed: int = 0,
            workers: int | None = None, quiet: bool = True) -> dict:
    """Compute every figure of the report of ``dataset`` (see docs/report.md)."""
    dataset = Path(dataset)
    index = SampleIndex(dataset)  # read once, for the rows and the measures
    manifest = index.manifest
    if select is not None and not isinstance(select, Selection):
        select = load_selection(select, dataset)
    rows = read_index(index, filter_refs(index.refs, select))
    if not rows:
        raise BlursynthError(f"{dataset}: the dataset holds no samples")
    measures = measure_dataset(index, [r["index"] for r in rows], workers=workers, quiet=quiet)

    split = None
    if default_split_file(dataset).exists():
        doc = load_split(default_split_file(dataset), dataset)
        where = {s: name for name, members in doc["sources"].items() for s in members}
        split = dict(sorted(Counter(where.get(r["source"], "none") for r in rows).items()))

    distributions = {}
    for key in DISCRETE:
        values = [v for r in rows if key in r for v in np.ravel(r[key]).tolist()]
        if values:
            distributions[key] = {"kind": "counts",
                                  "counts": {str(k): c for k, c in sorted(Counter(values).items())},
                                  "summary": summary([float(v) for v in values])}
    for key in CONTINUOUS:
        values = [float(v) for r in rows if key in r for v in np.ravel(r[key]).tolist()]
        if values:
            distributions[key] = {"kind": "histogram", "histogram": histogram(values), "summary": summary(values)}
    distributions["frames_per_sample"] = {"kind": "counts",
                                          "counts": {str(k): c for k, c in sorted(Counter(r["frames"] for r in rows).items())},
                                          "summary": summary([float(r["frames"]) for r in rows])}
    averaged = "n_frames" if "n_frames" in distributions else "tau" if "tau" in distributions else None

    motion_from = None
    if any(r["latent"] >= 2 for r in rows):
        motion_from = "latent frames"
    elif any(r["frames"] >= 2 for r in rows) and any("T" in r for r in rows):
        motion_from = "consecutive sharp frames of a sequence"
    motion_values = [measures[r["index"]]["motion"] for r in rows]
    motion_note = (f"mean DIS optical-flow displacement between {motion_from}, in px per source frame"
                   if motion_from and any(v is not None for v in motion_values) else
                   "the dataset holds no consecutive frames (no latent frames, no sequences), "
                   "so there is no motion score")

    samples = [{"index": r["index"], "source": r["source"],
                **{k: _finite(measures[r["index"]].get(k)) for k in MEASURES}} for r in rows]
    return {
        "format": REPORT_FORMAT,
        "dataset": {"path": str(dataset), "kind": manifest.kind, "fingerprint": manifest.fingerprint,
                    "samples_in_dataset": sum(s["samples"] for s in manifest.shards),
                    "samples_reported": len(rows), "complete": manifest.complete,
                    "selection": None if select is None else dict(select.criteria, n_samples=len(select.indices))},
        "seed": manifest.seed,
        "config": manifest.config,
        "counts": {"per_source": dict(sorted(Counter(r["source"] for r in rows).items())), "per_split": split,
                   "frame_sizes": {f"{w}x{h}": c for (w, h), c in
                                   sorted(Counter((r["width"], r["height"]) for r in rows).items())}},
        "distributions": distributions,
        "frames_averaged_key": averaged,
        "measures": {k: {"summary": summary([s[k] for s in samples if s[k] is not None]),
                         "histogram": histogram([s[k] for s in samples if s[k] is not None])} for k in MEASURES},
        "motion": {"available": any(v is not None for v in motion_values), "from": motion_from, "note": motion_note},
        "grids": pick_grids(measures, grid, seed),
        "samples": samples,
    }
