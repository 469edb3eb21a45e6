"""A contact sheet of a dataset: each row a sample, blurred | sharp | latent frames.

The rows are a seeded draw across sources
(:func:`blursynth.curate.split.draw_across_sources`, the draw that also picks the
reference models' validation and evaluation samples), not the first samples,
so one sheet shows the variety of a dataset: the first rows come from as many
different sources as there are. Each row says which source, which frame of a
sequence and which draw it shows.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from blursynth.dataset import Dataset
from blursynth.errors import BlursynthError
from blursynth.dataset.outdir import OutputMarker, check_output_file, write_output
from blursynth.curate.split import draw_across_sources

PREVIEW_FORMAT = "blursynth-preview/1"
# A sheet carries the PNG text chunk ``Software: blursynth-preview/1`` (written before
# the pixels), so that ``preview`` knows a file it wrote (blursynth.dataset.outdir).
PREVIEW_PNG = OutputMarker("blursynth preview", b"Software\x00" + PREVIEW_FORMAT.encode())


def contact_sheet(dataset: str | Path, out: str | Path, n: int = 4, seed: int = 0,
                  overwrite: bool = False) -> Path:
    """Write a PNG contact sheet of ``n`` samples of ``dataset`` drawn with ``seed``.

    Parameters
    ----------
    dataset : str or Path
        The dataset folder.
    out : str or Path
        The PNG to write.
    n : int
        Rows (samples).
    seed : int
        Which samples, and which frame of each sequence, are shown.
    overwrite : bool
        Replace an existing ``out`` that ``preview`` did not write (a
        dataset's own files never).

    Returns
    -------
    Path
        ``out``.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if n < 1:
        raise BlursynthError(f"--n {n}: must be at least 1")
    out = check_output_file(out, PREVIEW_PNG, overwrite=overwrite)
    data = Dataset(dataset)
    if not len(data):
        raise BlursynthError(f"{dataset}: the dataset has no samples")
    sources = [ref.source for ref in data.index.refs]
    rng = np.random.default_rng([seed, 1])
    rows = []
    for i in draw_across_sources(sources, n, seed):
        sample = data[i]
        length = sample["blur"].shape[0]
        rows.append((sample, int(rng.integers(length)), length))
    k = max((s["latent"].shape[1] if "latent" in s else 0) for s, _, _ in rows)
    cols = 2 + k
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.6 * cols, 2.1 * len(rows)), squeeze=False)
    for axrow, (sample, t, length) in zip(axes, rows):
        frames = [sample["blur"][t], sample["sharp"][t]]
        titles = ["blur", "sharp"]
        if "latent" in sample:
            frames += list(sample["latent"][t])
            titles += [f"latent {i}" for i in range(sample["latent"].shape[1])]
        for ax in axrow:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
        for ax, frame, title in zip(axrow, frames, titles):
            ax.imshow(np.asarray(frame))
            ax.set_frame_on(True)
            ax.set_title(title, fontsize=8)
        axrow[0].set_ylabel(row_label(sample, t, length), fontsize=7)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110, metadata={"Software": PREVIEW_FORMAT})
    plt.close(fig)
    return write_output(out, png.getvalue(), PREVIEW_PNG, overwrite=overwrite)


def row_label(sample: dict, t: int, length: int) -> str:
    """What a row shows: source, sample index, frame t of L, and the draw (tau/T or angle)."""
    draw = []
    if "tau" in sample and "T" in sample:
        draw.append(f"tau={int(sample['tau'])} T={int(sample['T'])}")
    if "angle_deg" in sample:
        draw.append(f"angle={float(np.ravel(sample['angle_deg'])[0]):.3g} deg")
    h, w = sample["blur"].shape[1:3]
    draw.append(f"{w}x{h}")
    # three short lines: a rotated label longer than its row runs into the next row's
    return "\n".join([str(sample["source"]), f"#{int(sample['index'])}, frame {t + 1} of {length}", ", ".join(draw)])
