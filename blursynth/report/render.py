"""Draw a report: matplotlib plots and frame thumbnails embedded as PNG in one HTML page.

Everything the page shows comes from the figures dict of
:mod:`blursynth.report.figures` (and the thumbnails of the samples it names);
images are ``data:`` URIs, and the page has no script, style sheet or font
from elsewhere, so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import cv2
import numpy as np

from blursynth.png import encode_png
from blursynth.dataset import SampleIndex

THUMB_WIDTH = 240
REPORT_FORMAT = "blursynth-report/1"
# In the page's <head>, before anything taken from the data: how ``report`` knows
# a page it wrote (blursynth.dataset.outdir).
GENERATOR = f"<meta name='generator' content='{REPORT_FORMAT}'>"
MEASURE_TITLES = {
    "psnr": "blur strength: PSNR blur vs sharp (dB, low = strong blur)",
    "mad": "blur strength: mean |blur - sharp| (8-bit levels)",
    "clipped_high": "fraction of blurred pixels with a channel at 255",
    "clipped_low": "fraction of blurred pixels with a channel at 0",
    "motion": "motion: DIS optical flow (px per source frame)",
}
DIST_TITLES = {"tau": "τ (frames averaged, highspeed)", "T": "T (exposure period, frames)",
               "n_frames": "frames averaged (panorama)", "angle_deg": "rotation angle per exposure (degrees)",
               "frames_per_sample": "frames per sample (L)"}


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure_png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def plots(figures: dict) -> list[tuple[str, bytes]]:
    """(title, PNG) of every distribution and measure histogram in ``figures``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    items = [(DIST_TITLES.get(k, k), d) for k, d in figures["distributions"].items()]
    items += [(MEASURE_TITLES[k], {"kind": "histogram", **m}) for k, m in figures["measures"].items()
              if m["histogram"] is not None]
    for title, dist in items:
        fig, ax = plt.subplots(figsize=(4.2, 2.6))
        if dist["kind"] == "counts":
            labels = list(dist["counts"])
            ax.bar(range(len(labels)), list(dist["counts"].values()), color="#4a7ab5")
            ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=90 if len(labels) > 12 else 0)
        else:
            edges, counts = dist["histogram"]["edges"], dist["histogram"]["counts"]
            ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#4a7ab5", edgecolor="white")
        ax.set_title(title, fontsize=8)
        ax.set_ylabel("count", fontsize=7)
        ax.tick_params(labelsize=7)
        fig.tight_layout()
        out.append((title, _figure_png(fig)))
    return out


def _thumb(frame: np.ndarray) -> bytes:
    h, w = frame.shape[:2]
    if w > THUMB_WIDTH:
        frame = cv2.resize(frame, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA)
    return encode_png(np.ascontiguousarray(frame))


def thumbnails(dataset: Path, indices: set[int]) -> dict[int, list[tuple[str, bytes]]]:
    """``{index: [(label, PNG), ...]}``: blur | sharp | latents of each sample's first frame."""
    out = {}
    with SampleIndex(dataset) as index:
        for ref in index.refs:
            if ref.index not in indices:
                continue
            cells = [("blur", _thumb(index.read(ref, "blur", (0,)))), ("sharp", _thumb(index.read(ref, "sharp", (0,))))]
            if "latent" in index.shards[ref.file].shapes:
                cells += [(f"latent {k}", _thumb(frame)) for k, frame in enumerate(index.read(ref, "latent", (0,)))]
            out[ref.index] = cells
    return out


def _fmt(x, digits=3):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return html.escape(str(x))


def _table(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


CSS = """body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1300px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#eee}.plots img{margin:4px;border:1px solid #ddd}.grid td{text-align:center;vertical-align:top}
.grid img{display:block}pre{background:#f6f6f6;padding:.6em;font-size:.8em;overflow:auto}.note{color:#555}"""


def html_page(figures: dict, plot_pngs: list[tuple[str, bytes]], thumbs: dict[int, list]) -> str:
    """The whole report page (UTF-8 HTML, images embedded)."""
    d = figures["dataset"]
    by_index = {s["index"]: s for s in figures["samples"]}
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>{GENERATOR}<title>blursynth report: "
             f"{html.escape(Path(d['path']).name)}</title><style>{CSS}</style></head><body>",
             f"<h1>blursynth report: {html.escape(d['path'])}</h1>",
             _table(["kind", "samples reported", "samples in dataset", "complete", "fingerprint"],
                    [[d["kind"], d["samples_reported"], d["samples_in_dataset"], str(d["complete"]),
                      d["fingerprint"][:16]]])]
    if d["selection"] is not None:
        parts.append(f"<p class='note'>Selection: {html.escape(json.dumps(d['selection'], sort_keys=True))}</p>")
    counts = figures["counts"]
    parts.append("<h2>Counts</h2>")
    parts.append(_table(["source", "samples"], [[k, v] for k, v in counts["per_source"].items()]))
    if counts["per_split"] is not None:
        parts.append(_table(["split", "samples"], [[k, v] for k, v in counts["per_split"].items()]))
    parts.append(_table(["frame size", "samples"], [[k, v] for k, v in counts["frame_sizes"].items()]))
    parts.append("<h2>Measures</h2>")
    parts.append(_table(["measure", "n", "min", "median", "mean", "max"],
                        [[k] + ([m["summary"][x] for x in ("n", "min", "median", "mean", "max")]
                                if m["summary"] else [None] * 5) for k, m in figures["measures"].items()]))
    parts.append(f"<p class='note'>Motion: {html.escape(figures['motion']['note'])}.</p>")
    parts.append("<h2>Distributions</h2><div class='plots'>")
    parts += [f"<img alt='{html.escape(t)}' title='{html.escape(t)}' src='{data_uri(p)}'>" for t, p in plot_pngs]
    parts.append("</div>")
    titles = {"strongest": "Strongest blur (lowest PSNR)", "weakest": "Weakest blur (highest PSNR)",
              "random": "Random samples"}
    for name, indices in figures["grids"].items():
        parts.append(f"<h2>{titles[name]}</h2><table class='grid'>")
        for i in indices:
            s = by_index[i]
            label = (f"#{i} {html.escape(str(s['source']))}<br>PSNR {_fmt(s['psnr'])} dB<br>"
                     f"MAD {_fmt(s['mad'])}<br>motion {_fmt(s['motion'])}")
            cells = "".join(f"<td><img alt='{html.escape(lab)} of sample {i}' src='{data_uri(png)}'>"
                            f"{html.escape(lab)}</td>" for lab, png in thumbs[i])
            parts.append(f"<tr><td>{label}</td>{cells}</tr>")
        parts.append("</table>")
    parts.append("<h2>Config</h2><pre>" + html.escape(json.dumps(
        {"seed": figures["seed"], "config": figures["config"]}, indent=1, sort_keys=True)) + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
