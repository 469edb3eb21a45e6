"""Per-sample cost of panorama rotation blur: naive py360convert loop vs ours vs bare remap.

Run: ``python benchmarks/bench_panorama.py [--samples 20] [--size 256] [--src FILE]``

For the same planned samples (same orientations, same frame counts n) it times,
in one run, one OpenCV thread (as in the engine's workers):

* naive: ``py360convert.e2p`` of the linear float32 panorama once per frame
  (each orientation given to e2p as yaw, pitch and in-plane rotation), summed;
* ours: :func:`blursynth.panorama.render` of the whole sample (n blur frames,
  the sharp frame, the latent frames, exposure and encoding included);
* bare remap: only the ``cv2.remap`` calls of the sample's n frames, with maps
  computed beforehand, from the same padded panorama our renderer samples
  (float32, RGB + luminance = 4 channels) and from a plain 3-channel copy.

The panorama is decoded and cached before timing (all three would pay it the
same way). Ours and bare remap run in interleaved rounds and the best round of
each is reported; the naive loop runs once on a few samples and is scaled to
the mean frame count. Prints per-sample milliseconds and the ratios the issue
asks for.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import cv2
import numpy as np
import py360convert

from blursynth import geometry
from blursynth.panorama import PanoramaConfig, plan, render
from blursynth.sources.panoramas import builtin_panoramas, load_panorama
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)


def e2p_angles(q) -> tuple[float, float, float]:
    """(u_deg, v_deg, in_rot_deg) of py360convert.e2p for the camera q.

    Our q = yaw(u) pitch(v) roll(r) (geometry.euler_to_quat); e2p's in-plane
    rotation turns the other way, so in_rot = -r.
    """
    m = geometry.rotation_matrix(q).astype(np.float64)
    forward = m[:, 2]
    u = math.atan2(forward[0], forward[2])
    v = math.asin(max(-1.0, min(1.0, forward[1])))
    rest = geometry.rotation_matrix(geometry.euler_to_quat(u, v, 0.0)).astype(np.float64).T @ m
    roll = math.atan2(rest[1, 0], rest[0, 0])
    return math.degrees(u), math.degrees(v), -math.degrees(roll)


def frame_orientations(spec):
    n = spec.n_frames[0]
    return [spec.orientation(spec.duty * i / (n - 1)) for i in range(n)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, help="square render size")
    parser.add_argument("--fov", type=float, default=60.0)
    parser.add_argument("--src", default=None, help="panorama file (default: the built-in courtyard.jpg)")
    parser.add_argument("--naive-samples", type=int, default=5, help="samples timed for the slow naive loop")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best is reported)")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    src = args.src or str(next(p for p in builtin_panoramas() if p.name == "courtyard.jpg"))
    config = PanoramaConfig(src=(src,), n=args.samples, size=(args.size, args.size), fov=args.fov, seed=1)
    specs, _ = plan(config)
    spec0 = specs[0]
    pano4 = load_panorama(spec0.path, spec0.kind, spec0.response, spec0.pano_width, spec0.source)
    pano3 = np.ascontiguousarray(pano4[..., :3])
    flat = np.ascontiguousarray(pano4[1:-1, 1:-1, :3])  # what e2p gets: the unpadded linear RGB
    size = (args.size, args.size)
    frames = [s.n_frames[0] for s in specs]

    builder = geometry.MapBuilder(size, args.fov, (flat.shape[0], flat.shape[1]))
    rotations = [[geometry.rotation_matrix(q) for q in frame_orientations(s)] for s in specs]
    dst4 = np.empty((*size, 4), np.float32)
    dst3 = np.empty((*size, 3), np.float32)

    def time_ours() -> float:
        t0 = time.perf_counter()
        for spec in specs:
            render(spec)
        return (time.perf_counter() - t0) / len(specs)

    def time_bare(src_img, dst) -> float:
        # each frame's maps are built untimed just before its remap, so they are
        # as hot in cache as in the renderer; only the remap call is timed
        total = 0.0
        for sample_rotations in rotations:
            for rotation in sample_rotations:
                map_x, map_y = builder(rotation)
                t0 = time.perf_counter()
                cv2.remap(src_img, map_x, map_y, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)
                total += time.perf_counter() - t0
        return total / len(specs)

    render(specs[0])  # warm caches (rays, response tables)
    # interleaved rounds, best of each: the three see the same machine load
    runs = [(time_ours(), time_bare(pano4, dst4), time_bare(pano3, dst3)) for _ in range(args.rounds)]
    ours = min(r[0] for r in runs)
    bare = {"4ch": min(r[1] for r in runs), "3ch": min(r[2] for r in runs)}

    # naive: e2p per frame, on a subset of the samples (it is slow); scaled per frame
    subset = specs[:max(1, min(args.naive_samples, len(specs)))]
    py360convert.e2p(flat, args.fov, 0.0, 0.0, size)
    t0 = time.perf_counter()
    naive_frames = 0
    for spec in subset:
        acc = np.zeros((*size, 3), np.float32)
        for q in frame_orientations(spec):
            u, v, r = e2p_angles(q)
            acc += py360convert.e2p(flat, args.fov, u, v, size, in_rot_deg=r)
            naive_frames += 1
    naive_per_frame = (time.perf_counter() - t0) / naive_frames
    naive = naive_per_frame * float(np.mean(frames))  # per sample of the full set's mean n

    print(f"machine: {cpu_name()}, {len(__import__('os').sched_getaffinity(0))} usable cores, "
          f"cv2 threads 1, numpy {np.__version__}, opencv {cv2.__version__}, py360convert "
          f"{getattr(py360convert, '__version__', '?')}")
    print(f"panorama {Path(src).name} {flat.shape[1]}x{flat.shape[0]}, render {args.size}x{args.size}, "
          f"fov {args.fov:g}, {len(specs)} samples, n frames per sample: mean {np.mean(frames):.1f} "
          f"(min {min(frames)}, max {max(frames)}); best of {args.rounds} rounds; naive timed on "
          f"{len(subset)} samples ({naive_frames} frames)")
    print(f"naive py360convert.e2p loop : {naive * 1e3:8.2f} ms/sample ({naive_per_frame * 1e3:.3f} ms/frame)")
    print(f"blursynth render            : {ours * 1e3:8.2f} ms/sample "
          f"({ours / np.mean(frames) * 1e3:.3f} ms/frame, sharp + latent + encode included)")
    print(f"bare cv2.remap, 4-ch source : {bare['4ch'] * 1e3:8.2f} ms/sample (what our renderer samples)")
    print(f"bare cv2.remap, 3-ch source : {bare['3ch'] * 1e3:8.2f} ms/sample")
    print(f"speed-up over naive         : {naive / ours:8.1f}x   (target >= 10x)")
    print(f"ours / bare remap (4-ch)    : {ours / bare['4ch']:8.2f}x   (target <= 2.5x)")
    print(f"ours / bare remap (3-ch)    : {ours / bare['3ch']:8.2f}x")


if __name__ == "__main__":
    main()
