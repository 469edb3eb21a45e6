"""A picture of a training run: ``curves.png`` beside ``log.jsonl``."""

from __future__ import annotations

import io
import json
from pathlib import Path

from blursynth.atomic import atomic_write_bytes


def plot_training(run: str | Path, out: str | Path | None = None) -> Path | None:
    """Plot training loss and validation PSNR (output vs blurry input) against the step.

    Reads ``RUN/log.jsonl``; writes ``out`` (default ``RUN/curves.png``,
    atomically: a kill never leaves half a picture) and returns its path, or
    None when the log holds nothing to plot.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_psnr" in r]
    if not train and not val:
        return None
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(9, 3.2))
    if train:
        # a line through one point draws nothing: a run that logged once shows a marker
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], lw=1,
                     marker="o" if len(train) == 1 else None)
        ax_loss.set_yscale("log")
    ax_loss.set(xlabel="step", ylabel="training MSE", title="loss")
    if val:
        steps = [r["step"] for r in val]
        ax_psnr.plot(steps, [r["val_psnr"] for r in val], "o-", label="model output")
        ax_psnr.plot(steps, [r["val_psnr_input"] for r in val], "s--", label="blurry input")
        ax_psnr.legend(fontsize=8)
    else:
        ax_psnr.text(0.5, 0.5, "no validation split\n(blursynth split DATASET --val 0.1)",
                     ha="center", va="center", transform=ax_psnr.transAxes, fontsize=9)
        ax_psnr.set_xticks([])
        ax_psnr.set_yticks([])
    ax_psnr.set(xlabel="step", ylabel="PSNR (dB)", title="validation")
    ax_psnr.ticklabel_format(axis="y", useOffset=False, style="plain")
    for ax in (ax_loss, ax_psnr):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out) if out else run / "curves.png"
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(out, png.getvalue())
    return out
