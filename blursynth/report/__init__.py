"""``blursynth report``: one self-contained HTML page and its JSON about a dataset.

:func:`make_report` computes the figures (:mod:`.figures`), then draws them
(:mod:`.render`). The JSON is named after the page (``notes.html`` ->
``notes.json``). Both files carry the report's marker (:mod:`blursynth.dataset.outdir`):
the page a ``<meta name='generator' content='blursynth-report/1'>``, the JSON
``"format": "blursynth-report/1"`` as its first key; a file without it, or a
file of a dataset, is never replaced (the former with ``overwrite``). See
docs/report.md.
"""

from __future__ import annotations

from pathlib import Path

from blursynth.curate.selection import Selection
from blursynth.errors import BlursynthError
from blursynth.dataset.outdir import OutputMarker, check_output_file, json_bytes, write_output
from blursynth.report.figures import collect
from blursynth.report.render import GENERATOR, REPORT_FORMAT, html_page, plots, thumbnails

REPORT_PAGE = OutputMarker("blursynth report", GENERATOR.encode())
REPORT_JSON = OutputMarker.json("blursynth report", REPORT_FORMAT)


def report_paths(out: str | Path, overwrite: bool = False) -> tuple[Path, Path]:
    """The page ``out`` and its JSON (same name, ``.json``), checked before any work.

    Raises
    ------
    BlursynthError
        ``out`` is not an ``.html`` file, its folder is missing or read-only,
        or either file exists and was not written by ``blursynth report``
        (unless ``overwrite``) or belongs to a dataset.
    """
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise BlursynthError(f"--out {out}: the report is an .html file")
    page = check_output_file(out, REPORT_PAGE, overwrite=overwrite)
    return page, check_output_file(out.with_suffix(".json"), REPORT_JSON, overwrite=overwrite)


def make_report(dataset: str | Path, out: str | Path, *, select: str | Path | Selection | None = None,
                grid: int = 4, seed: int = 0, workers: int | None = None, quiet: bool = True,
                overwrite: bool = False) -> dict:
    """Write ``out`` (HTML) and its JSON (``out`` with suffix ``.json``) beside it; return the figures.

    Parameters
    ----------
    dataset : a blursynth dataset folder.
    out : the HTML file to write; the JSON goes to ``out`` with suffix ``.json``.
    select : a selection file (or :class:`Selection`) from ``blursynth filter``.
    grid : samples in each grid (strongest, weakest, random).
    seed : seed of the random grid.
    workers, quiet : parallelism and progress bar of the per-sample measures.
    overwrite : replace an existing page or JSON that ``blursynth report`` did
        not write (a dataset's own files never).
    """
    if grid < 1:
        raise BlursynthError(f"--grid {grid}: must be at least 1")
    page_path, json_path = report_paths(out, overwrite)
    figures = collect(dataset, select=select, grid=grid, seed=seed, workers=workers, quiet=quiet)
    shown = {i for indices in figures["grids"].values() for i in indices}
    page = html_page(figures, plots(figures), thumbnails(Path(dataset), shown))
    write_output(json_path, json_bytes({"format": REPORT_FORMAT, **figures}), REPORT_JSON, overwrite=overwrite)
    write_output(page_path, page.encode("utf-8"), REPORT_PAGE, overwrite=overwrite)
    return figures


__all__ = ["make_report"]
