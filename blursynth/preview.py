"""A contact sheet of a dataset: each row a sample, blurred | sharp | latent frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blursynth.errors import BlursynthError
from blursynth.shards import iter_samples


def contact_sheet(dataset: str | Path, out: str | Path, n: int = 4) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if n < 1:
        raise BlursynthError(f"--n {n}: must be at least 1")
    samples = []
    for sample in iter_samples(Path(dataset)):
        samples.append(sample)
        if len(samples) == n:
            break
    if not samples:
        raise BlursynthError(f"{dataset}: the dataset has no samples")
    k = samples[0].arrays["latent"].shape[1] if "latent" in samples[0].arrays else 0
    cols = 2 + k
    fig, axes = plt.subplots(len(samples), cols, figsize=(2.6 * cols, 2.0 * len(samples)), squeeze=False)
    for row, sample in zip(axes, samples):
        frames = [sample.arrays["blur"][0], sample.arrays["sharp"][0]]
        titles = ["blur", "sharp"]
        if k:
            frames += list(sample.arrays["latent"][0])  # first frame of a sequence
            titles += [f"latent {i}" for i in range(k)]
        for ax, frame, title in zip(row, frames, titles):
            ax.imshow(np.asarray(frame))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=8)
        desc = ", ".join(f"{key}={float(np.ravel(sample.meta[key])[0]):g}" if key == "angle_deg"
                         else f"{key}={sample.meta[key]}" for key in ("tau", "T", "angle_deg") if key in sample.meta)
        row[0].set_ylabel(f"{sample.meta['source']}\n{desc}", fontsize=7)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
