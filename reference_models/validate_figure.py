"""``validate.png``: the trusted gain per source with its interval for each dataset, and a few
test samples as input / output(s) / sharp, each model run as its task says
(:func:`reference_models.apply.deblur_frames`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from blursynth.atomic import atomic_write_bytes
from reference_models.apply import deblur_frames
from reference_models.checkpoint import model_from_checkpoint
from reference_models.data import ShardIndex
from reference_models.runtime import resolve_device
from reference_models.task import task_of
from reference_models.verdicts import Validation, Verdict

__all__ = ["plot_validation"]

# Test samples shown as input / output / sharp in validate.png, and their centre crop.
N_EXAMPLES, EXAMPLE_CROP = 3, 160
# Sources drawn one by one in validate.png; of more, those with the lowest and highest gains.
MAX_PLOTTED = 40


def _examples(verdicts: list[Verdict], test_path: Path, device: str, seed: int = 0) -> list[dict]:
    """Up to :data:`N_EXAMPLES` trusted test samples (from different sources) as input, outputs, sharp."""
    samples = verdicts[0].trusted.samples
    by_source: dict[str, int] = {}  # a seeded draw, one sample per source, sources in the draw's order
    for k in np.random.default_rng(seed).permutation(len(samples)):
        by_source.setdefault(samples[k][2], int(samples[k][0]))
    chosen = list(by_source.items())[:N_EXAMPLES]
    device = resolve_device(device)
    index = ShardIndex(test_path)
    refs = {r.index: r for r in index.refs}
    models = [model_from_checkpoint(Path(v.run) / "train")[0].to(device) for v in verdicts]
    examples = []
    for source, i in chosen:
        row: dict = {"source": source, "outputs": []}
        for model in models:
            item = task_of(model).dataset(index, [refs[i]], model=model, clip_len=None, patch=None, augment=False,
                                          flip=False, seed=0)[0]
            blur = item["blur"]
            if blur.ndim == 4:  # a video window: the sample's middle frame, the model run over the window
                j = int(item["first"]) + int(item["count"]) // 2
                frames = [f.permute(1, 2, 0).numpy() for f in blur]
                out = list(deblur_frames(model, iter(frames), len(frames), device=device))[j]
                shown, sharp = blur[j], item["sharp"][j]
            else:
                out = next(deblur_frames(model, iter([blur.permute(1, 2, 0).numpy()]), 1, device=device))
                if out.ndim == 4:  # K latent frames: the middle one
                    out = out[out.shape[0] // 2]
                target = item["latent"] if "latent" in item else item["sharp"][None]
                shown, sharp = blur, target[target.shape[0] // 2]
            row["outputs"].append((out.clamp(0, 1) * 255).round().to(torch.uint8))
            row["input"], row["sharp"] = shown, sharp
        examples.append(row)
    return examples


def _crop(image) -> np.ndarray:
    """A ``[3, H, W]`` uint8 tensor as an ``[h, w, 3]`` array, its centre crop of :data:`EXAMPLE_CROP`."""
    arr = image.permute(1, 2, 0).numpy()
    h, w = arr.shape[:2]
    ch, cw = min(h, EXAMPLE_CROP), min(w, EXAMPLE_CROP)
    y, x = (h - ch) // 2, (w - cw) // 2
    return arr[y:y + ch, x:x + cw]


def plot_validation(result: Validation, test_path: Path, out: Path, device: str = "auto") -> Path:
    """``validate.png``: the trusted gain per source with its interval for each dataset, the overall
    mean with its interval, the threshold, and a few test samples as input / output(s) / sharp.

    Written atomically (:func:`blursynth.atomic.atomic_write_bytes`), as ``curves.png`` is.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    verdicts = result.verdicts
    examples = _examples(verdicts, Path(test_path), device)
    sources = sorted(verdicts[0].trusted.per_source)
    if len(sources) > MAX_PLOTTED:  # the sources where the first model gains least and most
        ranked = sorted(sources, key=lambda s: verdicts[0].trusted.per_source[s].mean)
        sources = sorted(ranked[:MAX_PLOTTED // 2] + ranked[-(MAX_PLOTTED // 2):])
    columns = 2 + len(verdicts)
    rows = 1 + len(examples)
    fig = plt.figure(figsize=(max(8.0, 2.2 * columns), 3.4 + 2.2 * len(examples)))
    grid = fig.add_gridspec(rows, columns, height_ratios=[1.6] + [1.0] * len(examples))
    ax = fig.add_subplot(grid[0, :])
    width = 0.8 / len(verdicts)
    for k, v in enumerate(verdicts):
        xs = np.arange(len(sources) + 1) + (k - (len(verdicts) - 1) / 2) * width
        ivs = [v.trusted.per_source[s] for s in sources] + [v.trusted.gain]
        means = np.array([iv.mean for iv in ivs])
        err = np.array([[iv.mean - iv.low for iv in ivs], [iv.high - iv.mean for iv in ivs]])
        ax.errorbar(xs, means, yerr=err, fmt="o", capsize=3, label=f"{v.dataset}: {v.outcome}")
    ax.axhline(verdicts[0].min_gain, color="tab:red", ls="--", lw=1, label=f"--min-gain {verdicts[0].min_gain:g} dB")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.axvline(len(sources) - 0.5, color="grey", lw=0.5, ls=":")
    ax.set_xticks(range(len(sources) + 1), [*sources, "all (over sources)"], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("PSNR gain (dB)")
    title = f"gain on the trusted test set: {result.test}"
    ax.set_title(title if len(title) <= 90 else title[:89] + "…", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="best")
    for r, row in enumerate(examples, start=1):
        panels = [("input", row["input"])] + [(f"output ({v.dataset})"[:40], o) for v, o in zip(verdicts, row["outputs"])]
        panels.append(("sharp", row["sharp"]))
        for c, (title, image) in enumerate(panels):
            axi = fig.add_subplot(grid[r, c])
            axi.imshow(_crop(image))
            axi.set_title(title if c else f"{row['source']}: input"[:40], fontsize=7)
            axi.axis("off")
    # fixed margins: tight_layout measures every text box, which cost seconds per figure
    fig.subplots_adjust(left=0.08, right=0.98, top=0.95, bottom=0.03, hspace=0.75, wspace=0.15)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(out, png.getvalue())
    return out
