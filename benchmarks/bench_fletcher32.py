"""Cost of HDF5's Fletcher-32 chunk checksum on reading (and writing) shards.

Writes the same frames into two HDF5 files laid out as blursynth shards (one
chunk per frame, uint8 RGB), one with ``fletcher32=True`` and one without, and
times reading every frame back, file by file in alternation so that both see
the same machine load. Reports the median time per frame and the ratio.

    python benchmarks/bench_fletcher32.py [--size 1280x720] [--frames 48] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from machine import cpu_name


def write(path: Path, frames: np.ndarray, fletcher32: bool, compression: str | None) -> float:
    """Write ``frames`` [N, H, W, 3] one chunk per frame; returns seconds per frame."""
    start = time.perf_counter()
    with h5py.File(path, "w", libver=("v110", "v110")) as f:
        ds = f.create_dataset("blur", shape=frames.shape, dtype=np.uint8, chunks=(1, *frames.shape[1:]),
                              fletcher32=fletcher32, compression=compression, track_times=False)
        for i, frame in enumerate(frames):
            ds[i] = frame
            ds.id.flush()
    os.sync()
    return (time.perf_counter() - start) / len(frames)


def read(path: Path, crop: int | None = None) -> float:
    """Read every frame (or a ``crop`` x ``crop`` patch of it, as a training loader
    does), one at a time; returns seconds per frame."""
    with h5py.File(path, "r", locking=False) as f:
        ds = f["blur"]
        n = len(ds)
        where = np.s_[:, :] if crop is None else np.s_[100:100 + crop, 200:200 + crop]
        start = time.perf_counter()
        for i in range(n):
            ds[(i, *where)]
        return (time.perf_counter() - start) / n


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compression", choices=["none", "lzf"], default="none")
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    compression = None if args.compression == "none" else args.compression
    rng = np.random.default_rng(0)
    # photo-like content: a smooth gradient plus noise, so lzf has something to do
    base = np.linspace(0, 200, w, dtype=np.float32)[None, :, None] + np.zeros((h, 1, 3), np.float32)
    frames = np.stack([np.clip(base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8)
                       for _ in range(args.frames)])
    ops = ("read", "read 128x128 crop", "write")
    times = {flag: {op: [] for op in ops} for flag in (True, False)}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {flag: Path(tmp) / f"f{int(flag)}.h5" for flag in (True, False)}
        for _ in range(args.repeats):
            for flag in (False, True):
                times[flag]["write"].append(write(paths[flag], frames, flag, compression))
            for flag in (False, True):
                read(paths[flag])  # page cache warm for both, as after a first epoch
            for flag in (False, True):
                times[flag]["read"].append(read(paths[flag]))
                times[flag]["read 128x128 crop"].append(read(paths[flag], crop=128))
        sizes = {flag: paths[flag].stat().st_size for flag in paths}
    print(f"{cpu_name()}, {os.cpu_count()} cores")
    print(f"{args.frames} frames of {w}x{h} RGB uint8, one chunk per frame, compression {args.compression}, "
          f"median of {args.repeats}")
    for op in ops:
        plain = statistics.median(times[False][op]) * 1e3
        checked = statistics.median(times[True][op]) * 1e3
        print(f"{op:17s}: without {plain:7.3f} ms/frame, with fletcher32 {checked:7.3f} ms/frame, "
              f"ratio {checked / plain:.2f}x")
    print(f"file size: +{sizes[True] - sizes[False]} bytes with checksums ({args.frames} chunks)")


if __name__ == "__main__":
    main()
