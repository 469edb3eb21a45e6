"""Benchmark: ``blursynth export --format gopro`` vs plain ``cv2.imwrite`` of the same PNGs.

A 1280x720 highspeed dataset (the built-in synthetic clip, tau = 7, T = tau,
no latents) is exported to the ``gopro`` layout, and, side by side in the same
run, the same frames (blur and sharp, already decoded, BGR, in memory) are
written with ``cv2.imwrite`` at the same PNG compression level on the same
number of worker processes. The export additionally plans, reads the HDF5
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

from blursynth.engine import RunOptions
from blursynth.export import export
from blursynth.highspeed import HighspeedConfig, synthesize
from blursynth.shards import iter_samples
from blursynth.synthetic import write_sample_clip
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)


def _imwrite_chunk(frames: np.ndarray, paths: list[str], level: int) -> None:
    cv2.setNumThreads(1)
    for frame, path in zip(frames, paths):
        cv2.imwrite(path, frame, [cv2.IMWRITE_PNG_COMPRESSION, level])


def plain_imwrite(frames: np.ndarray, out: Path, workers: int, level: int, chunk: int = 32) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    paths = [str(out / f"{i:06d}.png") for i in range(len(frames))]
    start = time.perf_counter()
    joblib.Parallel(n_jobs=workers, backend="loky")(
        joblib.delayed(_imwrite_chunk)(frames[i:i + chunk], paths[i:i + chunk], level)
        for i in range(0, len(frames), chunk))
    return time.perf_counter() - start


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
        plain, exp = [], []
        # warm the worker pool and the page cache once, untimed
        plain_imwrite(frames[:args.workers], tmp / "warm", args.workers, args.level)
        for _ in range(args.rounds):
            plain.append(plain_imwrite(frames, tmp / "plain", args.workers, args.level))
            exp.append(run_export(dataset, tmp / "export", args.workers, args.level))
        size = sum(p.stat().st_size for p in (tmp / "export").rglob("*.png"))
        t_plain, t_exp = statistics.median(plain), statistics.median(exp)
        print(f"machine: {cpu_name()}, {os.cpu_count()} cores; workers {args.workers}; "
              f"PNG level {args.level}; {n} PNGs of 1280x720 ({size / n / 1e6:.2f} MB each)")
        print(f"cv2.imwrite : {n / t_plain:6.1f} PNG/s  (median of {args.rounds}: {t_plain:.2f} s)")
        print(f"export gopro: {n / t_exp:6.1f} PNG/s  (median of {args.rounds}: {t_exp:.2f} s)")
        print(f"ratio export / imwrite: {t_plain / t_exp:.2f}  (target >= 0.8)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
