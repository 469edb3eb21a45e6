"""Benchmark: highspeed synthesis vs merely decoding the same 1280x720 PNG frames.

Prints, from one run (rounds interleaved, median of each):

* decode-only: ``cv2.imread`` of every frame, one thread;
* synthesis on 1 worker, strictly one thread (tau = 7, T = tau: every frame is
  read), written as shards, checksummed;
* synthesis on 1 worker with the read-ahead decode thread it gets by default
  when workers < cores;
* synthesis on 2 workers of one thread each (warm worker pool);
* the ratios: synthesis(1) / decode-only (target <= 1.15) and
  throughput(2 workers) / throughput(1) (target >= 1.8);
* shard compression options (none / lzf / gzip): time and size.

Usage: python benchmarks/bench_highspeed.py [--frames 280] [--rounds 3]
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

from blursynth.run.engine import RunOptions
from blursynth.highspeed import HighspeedConfig, synthesize
from blursynth.synthetic import write_sample_clip
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)


def decode_only(files: list[Path]) -> float:
    start = time.perf_counter()
    for f in files:
        cv2.imread(str(f), cv2.IMREAD_COLOR)
    return time.perf_counter() - start


def synth(src: Path, out: Path, workers: int, compression: str = "none", threads: int | None = None) -> float:
    shutil.rmtree(out, ignore_errors=True)  # not timed
    config = HighspeedConfig(src=(str(src),), tau=(7,), T="tau")
    # 20 samples a shard: 280 frames give 40 samples in 2 shards, an even load for 2 workers.
    options = RunOptions(out=out, workers=workers, shard_size=20, quiet=True, compression=compression,
                         threads_per_worker=threads)
    start = time.perf_counter()
    synthesize(config, options)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=280)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_highspeed_"))
    try:
        print(f"machine: {cpu_name()}, {os.cpu_count()} cores; writing {args.frames} PNG frames of 1280x720 ...")
        src = write_sample_clip(tmp / "clip", n_frames=args.frames, size=(1280, 720))
        files = sorted(src.glob("*.png"))
        out = tmp / "out"
        synth(src, out, 2)  # warm the worker pool and the page cache
        decode_only(files)
        times = {"decode": [], "synth1": [], "synth1ra": [], "synth2": []}
        for _ in range(args.rounds):
            times["decode"].append(decode_only(files))
            times["synth1"].append(synth(src, out, 1, threads=1))
            times["synth1ra"].append(synth(src, out, 1, threads=2))
            times["synth2"].append(synth(src, out, 2, threads=1))
        med = {k: statistics.median(v) for k, v in times.items()}
        n = len(files)
        print(f"decode-only (cv2.imread, 1 thread): {med['decode']:.2f} s  ({n / med['decode']:.1f} frames/s)")
        print(f"synthesis, 1 worker, 1 thread:     {med['synth1']:.2f} s  ({n / med['synth1']:.1f} frames/s)")
        print(f"synthesis, 1 worker + read-ahead:  {med['synth1ra']:.2f} s  ({n / med['synth1ra']:.1f} frames/s)"
              "  (default when workers < cores)")
        print(f"synthesis, 2 workers, 1 thread:    {med['synth2']:.2f} s  ({n / med['synth2']:.1f} frames/s)")
        r1 = med["synth1"] / med["decode"]
        r1ra = med["synth1ra"] / med["decode"]
        r2 = med["synth1"] / med["synth2"]
        print(f"ratio synthesis(1 worker, 1 thread) / decode-only = {r1:.3f}  (target <= 1.15: {'met' if r1 <= 1.15 else 'MISSED'})")
        print(f"ratio synthesis(1 worker, read-ahead) / decode    = {r1ra:.3f}")
        print(f"throughput 2 workers / 1 worker (1 thread each)   = {r2:.3f}  (target >= 1.8:  {'met' if r2 >= 1.8 else 'MISSED'})")
        print("compression (1 worker, one run each):")
        for compression in ("none", "lzf", "gzip"):
            t = synth(src, out, 1, compression, threads=1)
            size = sum(p.stat().st_size for p in out.glob("shard-*.h5")) / 2**20
            print(f"  {compression:5s} {t:6.2f} s  {size:8.1f} MiB  ({t / med['decode']:.2f}x decode-only)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
