"""``blursynth report``: one self-contained HTML page and ``report.json`` about a dataset.

:func:`make_report` computes the figures (:mod:`.figures`), then draws them
(:mod:`.render`). See docs/report.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from blursynth.atomic import atomic_write_bytes
from blursynth.curation import Selection
from blursynth.errors import BlursynthError
from blursynth.report.figures import collect
from blursynth.report.render import html_page, plots, thumbnails


def make_report(dataset: str | Path, out: str | Path, *, select: str | Path | Selection | None = None,
                grid: int = 4, seed: int = 0, workers: int | None = None, quiet: bool = True) -> dict:
    """Write ``out`` (HTML) and ``report.json`` beside it; return the figures.

    Parameters
    ----------
    dataset : a blursynth dataset folder.
    out : the HTML file to write; the JSON goes to ``out`` with suffix ``.json``.
    select : a selection file (or :class:`Selection`) from ``blursynth filter``.
    grid : samples in each grid (strongest, weakest, random).
    seed : seed of the random grid.
    workers, quiet : parallelism and progress bar of the per-sample measures.
    """
    out = Path(out)
    if grid < 1:
        raise BlursynthError(f"--grid {grid}: must be at least 1")
    if out.suffix.lower() not in (".html", ".htm"):
        raise BlursynthError(f"--out {out}: the report is an .html file")
    if not out.parent.is_dir():
        raise BlursynthError(f"--out {out}: the folder {out.parent} does not exist")
    figures = collect(dataset, select=select, grid=grid, seed=seed, workers=workers, quiet=quiet)
    shown = {i for indices in figures["grids"].values() for i in indices}
    page = html_page(figures, plots(figures), thumbnails(Path(dataset), shown))
    atomic_write_bytes(out.with_suffix(".json"), (json.dumps(figures, indent=1) + "\n").encode())
    atomic_write_bytes(out, page.encode("utf-8"))
    return figures


__all__ = ["make_report"]
