"""Benchmark: a run with fewer shards than workers (issue 9, item 8).

One highspeed shard (1280x720 frames of the built-in clip, tau = 7, T = tau),
timed side by side in interleaved rounds (median of each):

* ``--workers 1``: one worker, which gets every core (read-ahead decoding);
* ``--workers 2``, before: each worker got ``cores // workers`` threads, so
  the one busy worker ran on one thread (``threads_per_worker=1`` reproduces it);
* ``--workers 2``, now: each task gets ``cores // min(workers, shards)`` threads
  (the engine's default).

Prints the throughput ratios to ``--workers 1`` (target: now >= ~1).

Usage: python benchmarks/bench_small_run.py [--frames 120] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from blursynth.run.engine import RunOptions
from blursynth.highspeed import HighspeedConfig, synthesize
from blursynth.synthetic import write_sample_clip
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)


def synth(src: Path, out: Path, workers: int, threads: int | None = None) -> float:
    shutil.rmtree(out, ignore_errors=True)  # not timed
    config = HighspeedConfig(src=(str(src),), tau=(7,), T="tau")
    options = RunOptions(out=out, workers=workers, shard_size=64, quiet=True, threads_per_worker=threads)
    start = time.perf_counter()
    manifest = synthesize(config, options)
    elapsed = time.perf_counter() - start
    assert manifest.n_shards == 1, manifest.n_shards
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_small_run_"))
    try:
        print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {args.frames} PNG frames of 1280x720, one shard")
        src = write_sample_clip(tmp / "clip", n_frames=args.frames, size=(1280, 720))
        out = tmp / "out"
        synth(src, out, 2)  # warm the worker pool and the page cache
        times = {"w1": [], "w2_before": [], "w2_now": []}
        for _ in range(args.rounds):
            times["w1"].append(synth(src, out, 1))
            times["w2_before"].append(synth(src, out, 2, threads=1))
            times["w2_now"].append(synth(src, out, 2))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"--workers 1:                  {med['w1']:.2f} s")
        print(f"--workers 2, before (1 thread): {med['w2_before']:.2f} s  "
              f"throughput {med['w1'] / med['w2_before']:.2f}x of --workers 1")
        print(f"--workers 2, now:             {med['w2_now']:.2f} s  "
              f"throughput {med['w1'] / med['w2_now']:.2f}x of --workers 1")
        print("rounds:", {k: [round(t, 2) for t in v] for k, v in times.items()})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
