"""Benchmark: ``--response gamma,linear`` in one run against the runs it replaces.

Renders the same highspeed samples (the synthetic clip at 1280x720 PNG, tau = 7,
T = tau, one OpenCV thread, no read-ahead thread; ``render`` only, shard writing
excluded) with one curve, with a list of two and of three curves, rounds
interleaved, and prints the median time per blurred frame and the ratio to the
single curve. A list run decodes each frame once and averages once per curve,
so it should cost well under the sum of the single-curve runs it replaces
(printed as "separate runs": one run per curve, each decoding the frames).

Usage: python benchmarks/bench_renditions.py [--samples 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from blursynth.highspeed import HighspeedConfig, plan, render
from blursynth.sources.clips import discover
from blursynth.synthetic import write_sample_clip
from blursynth.run.worker import Worker
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

CASES = ("gamma", "linear", "srgb", "gamma,linear", "gamma,linear,srgb")


def time_renders(specs) -> float:
    worker = Worker(1)
    start = time.perf_counter()
    for spec in specs:
        render(spec, worker)
    return (time.perf_counter() - start) / sum(spec.seq_len for spec in specs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=2, help="blurred frames per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory(prefix="bench_renditions_") as tmp:
        print(f"machine: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
              flush=True)
        src = write_sample_clip(Path(tmp) / "clip", n_frames=7 * args.samples, size=(1280, 720))
        clips, _ = discover((str(src),))
        specs = {name: plan(HighspeedConfig(src=(str(src),), tau=(7,), T="tau", response=name), clips)[0]
                 for name in CASES}
        time_renders(specs["gamma"])  # warm the page cache
        times = {name: [] for name in CASES}
        for r in range(args.rounds):
            for name in CASES:
                times[name].append(time_renders(specs[name]))
                print(f"  round {r + 1} {name}: {1000 * times[name][-1]:.1f} ms/frame", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"machine load average at the end {os.getloadavg()[0]:.1f}")
        print("highspeed, 1280x720, tau = 7 (time per blurred frame, decoding included):")
        for name in CASES:
            print(f"  --response {name:20s} {1000 * med[name]:8.1f} ms/frame   {med[name] / med['gamma']:5.2f}x gamma")
        for name, parts in (("gamma,linear", ("gamma", "linear")),
                            ("gamma,linear,srgb", ("gamma", "linear", "srgb"))):
            separate = sum(med[p] for p in parts)
            print(f"  {name}: one run {1000 * med[name]:.1f} ms vs separate runs {1000 * separate:.1f} ms "
                  f"({med[name] / separate:.2f}x)")


if __name__ == "__main__":
    main()
