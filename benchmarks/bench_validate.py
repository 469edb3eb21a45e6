"""Benchmark: does ``validate`` tell good data from broken data? (issue 20, item 3)

Runs ``validate`` with no options (the built-in reference test set, the probe
preset on the CPU, its step count) on:

* ``highspeed``: default highspeed data (``--tau 7``) from several synthetic
  240 fps clips (seeds 0..K-1 of :mod:`blursynth.synthetic`) -> should teach;
* ``panorama``: default panorama data (``blursynth panorama``, the bundled
  panoramas, 3 latent frames) -> should teach;
* ``panorama-seq``: panorama data in sequence mode (``--seq-len 8``, 40
  sequences of the bundled panoramas), validated by dtb -> should teach;
* broken copies of the data, which must never be "teaches":

  - ``shift3``: sharp (and latent) frames shifted 3 px to the right;
  - ``swapped``: each sample's sharp frames are those of another sample of the
    same clip (the next one of that clip, cyclically);
  - ``tau1``: ``highspeed --tau 1 --T 7``: the "blurred" frame is the sharp frame;
  - ``panorama-shift3``: the panorama data with its sharp and latent frames
    shifted 3 px, as ``shift3``.

  ``shift3``, ``swapped`` and ``panorama-shift3`` are the highspeed or panorama
  dataset rewritten sample by sample through the project's shard writer
  (:func:`blursynth.dataset.writer.write_dataset`).

Prints one row per case: wall time, steps, the trusted gain with its 95 %
interval, the verdict, and the self-consistency gain (the dataset's own
held-out split), as the table in docs/benchmarks.md.

Usage::

    python benchmarks/bench_validate.py                  # the whole table (about 17 minutes on 2 cores at load 4)
    python benchmarks/bench_validate.py --quick          # 300 steps, 3 clips: checks the script, not the verdicts
    python benchmarks/bench_validate.py --cases highspeed,shift3 --out runs/bench
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from blursynth.run.engine import RunOptions
from blursynth.highspeed import HighspeedConfig
from blursynth.highspeed import synthesize as highspeed
from blursynth.panorama.config import PanoramaConfig
from blursynth.panorama.pipeline import synthesize as panorama
from blursynth.dataset import Manifest, Sample, iter_samples, write_dataset
from blursynth.synthetic import write_sample_clip
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)
from reference_models.validate import validate_datasets

CASES = ("highspeed", "panorama", "panorama-seq", "shift3", "swapped", "tau1", "panorama-shift3")
EXPECTED = {"highspeed": "teaches", "panorama": "teaches", "panorama-seq": "teaches"}  # the broken ones: never "teaches"
SHIFT = 3


def shifted(frames: np.ndarray, dx: int) -> np.ndarray:
    """Frames [..., H, W, 3] moved ``dx`` pixels to the right, the left edge repeated."""
    pad = [(0, 0)] * frames.ndim
    pad[-2] = (dx, 0)
    return np.pad(frames, pad, mode="edge")[..., :frames.shape[-2], :]


def rewrite(src: Path, out: Path, change) -> Path:
    """``src`` rewritten through the shard writer, each sample passed through ``change(sample, samples)``."""
    manifest = Manifest.load(src)
    samples = list(iter_samples(src))
    sizes = [entry["samples"] for entry in sorted(manifest.shards, key=lambda e: e["index"])]
    config = {**manifest.config, "doctored": change.__name__}
    write_dataset(out, manifest.kind, config, sizes, (change(s, samples) for s in samples), seed=manifest.seed)
    return out


def shift3(sample: Sample, samples) -> Sample:
    arrays = dict(sample.arrays)
    for name in ("sharp", "latent"):
        if name in arrays:
            arrays[name] = shifted(arrays[name], SHIFT)
    return Sample(arrays, sample.meta)


def swapped(sample: Sample, samples) -> Sample:
    same = [s for s in samples if s.meta["source"] == sample.meta["source"]]
    other = same[(next(k for k, s in enumerate(same) if s.meta["index"] == sample.meta["index"]) + 1) % len(same)]
    arrays = dict(sample.arrays)
    for name in ("sharp", "latent"):
        if name in arrays:
            arrays[name] = other.arrays[name]
    return Sample(arrays, sample.meta)


def make(case: str, root: Path, clips: Path, n_panorama: int) -> Path:
    out = root / case
    if (out / "manifest.json").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    options = RunOptions(out=out, workers=1, quiet=True)
    if case == "highspeed":
        highspeed(HighspeedConfig(src=(str(clips),)), options)
    elif case == "tau1":
        highspeed(HighspeedConfig(src=(str(clips),), tau=(1,), T=(7,)), options)
    elif case == "panorama":
        panorama(PanoramaConfig(n=n_panorama), options)
    elif case == "panorama-seq":
        panorama(PanoramaConfig(n=max(2, n_panorama * 2 // 5), seq_len=8), options)
    elif case == "panorama-shift3":
        rewrite(make("panorama", root, clips, n_panorama), out, shift3)
    else:
        rewrite(make("highspeed", root, clips, n_panorama), out, {"shift3": shift3, "swapped": swapped}[case])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--clips", type=int, default=4, help="synthetic clips of the highspeed data")
    parser.add_argument("--steps", type=int, default=None, help="training steps [default: the preset's]")
    parser.add_argument("--quick", action="store_true", help="300 steps, 3 clips, 40 panorama samples")
    parser.add_argument("--out", type=Path, default=None, help="keep datasets and runs here [default: a temporary folder]")
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown case(s) {', '.join(sorted(unknown))}")
    steps, n_clips, n_panorama = args.steps, args.clips, 100
    if args.quick:
        steps, n_clips, n_panorama = steps or 300, min(n_clips, 3), 40
    root = args.out or Path(tempfile.mkdtemp(prefix="bench_validate_"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs, load {os.getloadavg()[0]:.1f}; "
          f"steps: {steps or 'the preset'}; {n_clips} clips")
    clips = root / "clips"
    for seed in range(n_clips):
        if not (clips / f"clip-{seed}").exists():
            write_sample_clip(clips / f"clip-{seed}", seed=seed)
    rows = []
    try:
        for case in cases:
            data = make(case, root, clips, n_panorama)
            run = root / f"run-{case}"
            shutil.rmtree(run, ignore_errors=True)
            start = time.perf_counter()
            result = validate_datasets(data, steps=steps, out=run, quiet=True)
            wall = time.perf_counter() - start
            v = result.verdicts[0]
            iv = v.trusted.gain
            own = "-" if v.self_consistency is None else f"{v.self_consistency.gain.mean:+.2f}"
            ok = (v.outcome == EXPECTED[case]) if case in EXPECTED else (v.outcome != "teaches")
            rows.append((case, v.model, f"{wall / 60:.1f}", str(v.steps), f"{iv.mean:+.2f}",
                         f"{iv.low:+.2f} to {iv.high:+.2f}", v.outcome, own, "yes" if ok else "NO"))
            print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    finally:
        if args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    header = ("case", "model", "wall (min)", "steps", "trusted gain (dB)", "95% interval", "verdict",
              "self-consistency (dB)", "as expected")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0 if all(row[-1] == "yes" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
