"""Benchmark: ``blursynth export --format gopro`` vs plain ``cv2.imwrite`` of the same PNGs.

A 1280x720 highspeed dataset (the built-in synthetic clip, tau = 7, T = tau,
no latents) is exported to the ``gopro`` layout, and, side by side in the same
run, the same frames (blur and sharp, already decoded, BGR, in memory) are
written with ``cv2.imwrite`` at the same PNG compression level on the same
number of worker processes, in chunks of 16 PNGs (as the export's tasks of
8 frames, blur and sharp). Only the ``cv2.imwrite`` calls are timed, inside
the workers, and their sum is divided by the worker count: the rate of an
ideal, perfectly balanced pool with nothing to read. The export additionally plans, reads the HDF5
shards, converts RGB to BGR, and writes each file under a temporary name then
renames it. Rounds are interleaved; the medians are reported, and the ratio

    rate(export) / rate(cv2.imwrite)          target >= 0.8

Usage: python benchmarks/bench_export.py [--frames 120] [--workers 2] [--rounds 3] [--level 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import joblib
import numpy as np

from blursynth.run.engine import RunOptions
from blursynth.export import export
from blursynth.highspeed import HighspeedConfig, synthesize
from blursynth.dataset import iter_samples
from blursynth.synthetic import write_sample_clip
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)


def _imwrite_chunk(npy: str, lo: int, hi: int, out: str, level: int) -> float:
    """Worker: load frames lo..hi (untimed), then time only their cv2.imwrite calls."""
    cv2.setNumThreads(1)
    frames = np.array(np.load(npy, mmap_mode="r")[lo:hi])
    start = time.perf_counter()
    for i, frame in enumerate(frames, lo):
        cv2.imwrite(f"{out}/{i:06d}.png", frame, [cv2.IMWRITE_PNG_COMPRESSION, level])
    return time.perf_counter() - start


def plain_imwrite(npy: Path, n: int, out: Path, workers: int, level: int, chunk: int = 16) -> float:
    """Seconds of pure cv2.imwrite work divided by the workers: an ideal, perfectly
    balanced pool with the frames already decoded in each worker's memory."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    times = joblib.Parallel(n_jobs=workers, backend="loky")(
        joblib.delayed(_imwrite_chunk)(str(npy), lo, min(lo + chunk, n), str(out), level)
        for lo in range(0, n, chunk))
    return sum(times) / workers


def run_export(dataset: Path, out: Path, workers: int, level: int) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    export(dataset, "gopro", out, workers=workers, png_level=level, quiet=True)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120, help="source frames of the 240 fps clip")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--level", type=int, default=1, help="PNG compression level (blursynth's default: 1)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_export_"))
    try:
        clip = write_sample_clip(tmp / "clip", args.frames, (1280, 720))
        dataset = tmp / "ds"
        synthesize(HighspeedConfig(src=(str(clip),), tau=(7,), T="tau"),
                   RunOptions(out=dataset, workers=args.workers, quiet=True))
        frames = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for s in iter_samples(dataset)
                           for name in ("blur", "sharp") for f in s.arrays[name]])
        n = len(frames)
        npy = tmp / "frames.npy"
        np.save(npy, frames)
        del frames
        plain, exp = [], []
        # warm the worker pool and the page cache once, untimed
        plain_imwrite(npy, args.workers, tmp / "warm", args.workers, args.level)
        for _ in range(args.rounds):
            plain.append(plain_imwrite(npy, n, tmp / "plain", args.workers, args.level))
            exp.append(run_export(dataset, tmp / "export", args.workers, args.level))
        size = sum(p.stat().st_size for p in (tmp / "export").rglob("*.png"))
        t_plain, t_exp = statistics.median(plain), statistics.median(exp)
        print(f"machine: {cpu_name()}, {os.cpu_count()} cores; workers {args.workers}; "
              f"PNG level {args.level}; {n} PNGs of 1280x720 ({size / n / 1e6:.2f} MB each)")
        print(f"cv2.imwrite : {n / t_plain:6.1f} PNG/s  (median of {args.rounds}: {t_plain:.2f} s of imwrite per worker)")
        print(f"export gopro: {n / t_exp:6.1f} PNG/s  (median of {args.rounds}: {t_exp:.2f} s)")
        print(f"ratio export / imwrite: {t_plain / t_exp:.2f}  (target >= 0.8)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
