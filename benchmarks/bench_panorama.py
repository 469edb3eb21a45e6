"""Panorama speed: render vs naive loop vs bare remap; large panoramas; planning at scale.

Run from the repository root or benchmarks/::

    python benchmarks/bench_panorama.py [--samples 20] [--size 256] [--src FILE]   # render
    python benchmarks/bench_panorama.py --case large [--panoramas 6]               # SUN360-sized JPEGs
    python benchmarks/bench_panorama.py --case plan [--plan-count 100000]          # planning at scale

``--case render`` (the default). For the same planned samples (same
orientations, same frame counts n) it times, in one run, one OpenCV thread (as
in the engine's workers):

* naive: ``py360convert.e2p`` of the linear float32 panorama once per frame
  (each orientation given to e2p as yaw, pitch and in-plane rotation), summed;
* ours: :func:`blursynth.panorama.render` of the whole sample (n blur frames,
  the sharp frame, the latent frames, exposure and encoding included);
* maps: only the map building of the sample's n frames, the renderer's
  (:class:`blursynth.panorama.geometry.InterpolatedMapBuilder`: exact on a coarse grid,
  upsampled) and the exact one (:class:`blursynth.panorama.geometry.MapBuilder`);
* bare remap: only the ``cv2.remap`` calls of the sample's n frames, with maps
  computed beforehand, from the same padded panorama our renderer samples
  (float32, RGB + luminance = 4 channels) and from a plain 3-channel copy.

The panorama is decoded and cached before timing (all would pay it the same
way). Ours, maps and bare remap run in interleaved rounds and the best round of
each is reported; the naive loop runs once on a few samples and is scaled to
the mean frame count.

``--case large``: writes ``--panoramas`` generated 9104x4552 JPEGs (SUN360's
size; the built-in courtyard scene enlarged, with fine texture, quality 90)
and renders, on one worker (in this process, one OpenCV thread; the worker
given one thread, then two: the second loads the next panorama while the first
renders), one sample from each of them (what ``--n`` over a large collection does: every sample
decodes its panorama) and as many samples all from the first one (one decode
serves them all), in interleaved rounds with the worker's cache emptied before
each. It also times a full ``cv2.imread`` against the reduced decode used.

``--case plan``: writes ``--plan-count`` tiny panoramas (a third each .jpg,
.hdr, .pfm) and times discovery (headers only) and planning of one sample per
panorama, at 1/10, 1/3 and all of them, to show that the cost per file stays
constant.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np
import py360convert

from blursynth.panorama import geometry
from blursynth.panorama import PanoramaConfig, discover, plan, render
from blursynth.panorama.load import load_panorama
from blursynth.sources.panoramas import builtin_panoramas
from blursynth.run.worker import Worker
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


def bench_render(args) -> None:
    """``--case render``: ours vs naive e2p loop vs map building vs bare remap."""

    src = args.src or str(next(p for p in builtin_panoramas() if p.name == "courtyard.jpg"))
    config = PanoramaConfig(src=(src,), n=args.samples, size=(args.size, args.size), fov=args.fov, seed=1)
    specs = plan(config, discover(config)[0])
    spec0 = specs[0]
    pano4 = load_panorama(spec0.path, spec0.dynamic_range, spec0.response, spec0.pano_width, spec0.source)
    pano3 = np.ascontiguousarray(pano4[..., :3])
    (ph, pw), pad_x = geometry.padded_layout(pano4.shape)
    flat = np.ascontiguousarray(pano4[1:-1, pad_x:pad_x + pw, :3])  # what e2p gets: the unpadded linear RGB
    size = (args.size, args.size)
    frames = [s.n_frames[0] for s in specs]

    builder = geometry.InterpolatedMapBuilder(size, args.fov, (ph, pw), pad_x)  # what the renderer uses
    exact = geometry.MapBuilder(size, args.fov, (ph, pw), geometry.PAD, pad_x)
    rotations = [[geometry.rotation_matrix(q) for q in frame_orientations(s)] for s in specs]
    dst4 = np.empty((*size, 4), np.float32)
    dst3 = np.empty((*size, 3), np.float32)

    worker = Worker()  # one worker renders them all, as in the engine

    def time_ours() -> float:
        t0 = time.perf_counter()
        for spec in specs:
            render(spec, worker)
        return (time.perf_counter() - t0) / len(specs)

    def time_maps(build) -> float:
        t0 = time.perf_counter()
        for sample_rotations in rotations:
            for rotation in sample_rotations:
                build(rotation)
        return (time.perf_counter() - t0) / len(specs)

    def time_grid_maps() -> float:
        # as the renderer asks: all the frames of a sample's exposure at once
        t0 = time.perf_counter()
        for sample_rotations in rotations:
            for _ in builder.frames(np.asarray(sample_rotations)):
                pass
        return (time.perf_counter() - t0) / len(specs)

    def time_bare(src_img, dst) -> float:
        # each frame's maps are built untimed just before its remap, so they are
        # as hot in cache as in the renderer; only the remap call is timed
        total = 0.0
        for sample_rotations in rotations:
            for rotation in sample_rotations:
                map_x, map_y = exact(rotation)
                t0 = time.perf_counter()
                cv2.remap(src_img, map_x, map_y, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)
                total += time.perf_counter() - t0
        return total / len(specs)

    render(specs[0], worker)  # warm caches (rays, response tables)
    # interleaved rounds, best of each: the three see the same machine load
    runs = [(time_ours(), time_bare(pano4, dst4), time_bare(pano3, dst3), time_grid_maps(), time_maps(exact))
            for _ in range(args.rounds)]
    ours = min(r[0] for r in runs)
    bare = {"4ch": min(r[1] for r in runs), "3ch": min(r[2] for r in runs)}
    maps = min(r[3] for r in runs)
    maps_exact = min(r[4] for r in runs)
    steps = {s: c / args.rounds for s, c in builder.counts.items()}
    frames_total = sum(steps.values())

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

    print(f"machine: {cpu_name()}, {len(os.sched_getaffinity(0))} usable cores, "
          f"cv2 threads 1, numpy {np.__version__}, opencv {cv2.__version__}, py360convert "
          f"{getattr(py360convert, '__version__', '?')}")
    print(f"panorama {Path(src).name} {flat.shape[1]}x{flat.shape[0]}, render {args.size}x{args.size}, "
          f"fov {args.fov:g}, {len(specs)} samples, n frames per sample: mean {np.mean(frames):.1f} "
          f"(min {min(frames)}, max {max(frames)}); best of {args.rounds} rounds; naive timed on "
          f"{len(subset)} samples ({naive_frames} frames)")
    print(f"naive py360convert.e2p loop : {naive * 1e3:8.2f} ms/sample ({naive_per_frame * 1e3:.3f} ms/frame)")
    print(f"blursynth render            : {ours * 1e3:8.2f} ms/sample "
          f"({ours / np.mean(frames) * 1e3:.3f} ms/frame, sharp + latent + encode included)")
    print(f"maps, renderer's (grid)     : {maps * 1e3:8.2f} ms/sample ({maps / np.mean(frames) * 1e3:.3f} ms/frame; "
          "frames per grid step " + ", ".join(f"{'exact' if s == 0 else s}: {c / frames_total:.0%}"
                                              for s, c in steps.items()) + ")")
    print(f"maps, exact (MapBuilder)    : {maps_exact * 1e3:8.2f} ms/sample "
          f"({maps_exact / np.mean(frames) * 1e3:.3f} ms/frame)")
    print(f"bare cv2.remap, 4-ch source : {bare['4ch'] * 1e3:8.2f} ms/sample (what our renderer samples; "
          f"{bare['4ch'] / np.mean(frames) * 1e3:.3f} ms/frame)")
    print(f"bare cv2.remap, 3-ch source : {bare['3ch'] * 1e3:8.2f} ms/sample")
    print(f"speed-up over naive         : {naive / ours:8.1f}x   (target >= 10x)")
    print(f"ours / bare remap (4-ch)    : {ours / bare['4ch']:8.2f}x   (the whole render)")
    print(f"maps / bare remap (4-ch)    : {maps / bare['4ch']:8.2f}x   (exact maps: {maps_exact / bare['4ch']:.2f}x)")
    print(f"(maps + remap) / bare remap : {(maps + bare['4ch']) / bare['4ch']:8.2f}x   (target <= 1.5x; "
          f"exact maps: {(maps_exact + bare['4ch']) / bare['4ch']:.2f}x)")
    print(f"ours / bare remap (3-ch)    : {ours / bare['3ch']:8.2f}x")


def textured_jpeg(path: Path, width: int, seed: int) -> None:
    """A photo-like JPEG ``width`` x ``width / 2``: the built-in courtyard enlarged,
    times a fine multiplicative texture (so that the JPEG holds detail at every scale)."""
    h = width // 2
    rng = np.random.default_rng(seed)
    base = cv2.imread(str(next(p for p in builtin_panoramas() if p.name == "courtyard.jpg")))
    base = np.roll(cv2.resize(base, (width, h), interpolation=cv2.INTER_LINEAR), seed * 997, axis=1)
    noise = rng.standard_normal((h // 2 + 1, width // 2 + 1)).astype(np.float32)
    tex = cv2.resize(noise, (width, h), interpolation=cv2.INTER_LINEAR)[..., None]
    img = cv2.convertScaleAbs(base.astype(np.float32) * (1.0 + 0.08 * tex))
    assert cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])


def bench_large(args) -> None:
    """``--case large``: one sample per 9104x4552 JPEG vs all samples from one."""
    import tempfile

    from blursynth.sources import panoramas as sources
    from blursynth.run.worker import Worker

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        # --jpegs DIR keeps the generated files, so that two checkouts can be timed on the same ones
        folder = Path(args.jpegs) if args.jpegs else Path(tmp) / "sun360"
        folder.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        for i in range(args.panoramas):
            if not (folder / f"pano{i:02d}.jpg").exists():
                textured_jpeg(folder / f"pano{i:02d}.jpg", 9104, i)
        made = time.perf_counter() - t0
        first = folder / "pano00.jpg"
        size = (args.size, args.size)
        each_cfg = PanoramaConfig(src=tuple(str(folder / f"pano{i:02d}.jpg") for i in range(args.panoramas)),
                                  n=args.panoramas, size=size, fov=args.fov, seed=2)
        one_cfg = PanoramaConfig(src=(str(first),), n=args.panoramas, size=size, fov=args.fov, seed=2)
        each = plan(each_cfg, discover(each_cfg)[0])
        one = plan(one_cfg, discover(one_cfg)[0])
        assert len({s.source for s in each}) == args.panoramas and len({s.source for s in one}) == 1

        def run(specs, threads: int) -> float:
            sources._padded.cache_clear()  # a fresh worker: nothing decoded yet
            worker = Worker(threads)
            t = time.perf_counter()
            for i, spec in enumerate(specs):
                worker.upcoming = specs[i + 1:i + 5]  # as the engine tells a worker
                render(spec, worker)
            for future in worker.state("panorama.ahead", dict).values():
                future.result()
            return time.perf_counter() - t

        def decode(flag) -> float:
            t = time.perf_counter()
            cv2.imread(str(first), flag)
            return time.perf_counter() - t

        run(one[:1], 1)  # warm up code paths
        rounds = [(run(each, 1), run(one, 1), run(each, 2), run(one, 2),
                   decode(cv2.IMREAD_COLOR), decode(cv2.IMREAD_REDUCED_COLOR_4)) for _ in range(args.rounds)]
        t_each, t_one, t_each2, t_one2, full, reduced = (min(r[k] for r in rounds) for k in range(6))
        width = each[0].pano_width
        # (a blursynth without reduced decoding, for a before/after run: full decode)
        r = sources.jpeg_reduction(9104, width) if hasattr(sources, "jpeg_reduction") else 1
    n = args.panoramas
    print(f"machine: {cpu_name()}, {len(os.sched_getaffinity(0))} usable cores, one worker, cv2 threads 1, "
          f"opencv {cv2.__version__}")
    print(f"{n} generated 9104x4552 JPEGs (quality 90, written in {made:.1f} s), render {args.size}x{args.size}, "
          f"fov {args.fov:g}: working width {width}, decoded at 1/{r}; best of {args.rounds} interleaved rounds")
    print(f"cv2.imread full decode       : {full * 1e3:8.1f} ms")
    print(f"cv2.imread 1/4 (reduced)     : {reduced * 1e3:8.1f} ms")
    for threads, te, to in ((1, t_each, t_one), (2, t_each2, t_one2)):
        print(f"worker with {threads} thread{'s' if threads > 1 else ''}"
              + (" (renders on one, loads the next panorama on the other)" if threads > 1 else ""))
        print(f"  one sample per panorama      : {te:8.2f} s for {n} samples = {n / te:6.2f} samples/s")
        print(f"  all samples from one panorama: {to:8.2f} s for {n} samples = {n / to:6.2f} samples/s")
        print(f"  throughput ratio (each / one): {to / te:8.2f}    (target >= 0.5)")


def bench_plan(args) -> None:
    """``--case plan``: discovery and planning of many tiny panoramas (headers only)."""
    import tempfile

    from blursynth.sources.panoramas import discover

    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp) / "many"
        folder.mkdir()
        tiny = np.full((16, 32, 3), 0.25, np.float32)
        cv2.imwrite(str(Path(tmp) / "t.hdr"), tiny)
        cv2.imwrite(str(Path(tmp) / "t.pfm"), tiny)
        cv2.imwrite(str(Path(tmp) / "t.jpg"), (tiny * 255).astype(np.uint8))
        blobs = {ext: (Path(tmp) / f"t{ext}").read_bytes() for ext in (".jpg", ".hdr", ".pfm")}
        exts = list(blobs)
        t0 = time.perf_counter()
        # 1000 files per sub-folder, as a large collection would be laid out
        for i in range(args.plan_count):
            sub = folder / f"{i // 1000:04d}"
            if i % 1000 == 0:
                sub.mkdir()
            (sub / f"p{i:06d}{exts[i % 3]}").write_bytes(blobs[exts[i % 3]])
        made = time.perf_counter() - t0
        rows = []
        for count in sorted({max(1, args.plan_count // 10), max(1, args.plan_count // 3), args.plan_count}):
            subs = sorted(folder.iterdir())[:math.ceil(count / 1000)]  # whole folders
            t = time.perf_counter()
            found, skipped = discover([str(s) for s in subs])
            t_discover = time.perf_counter() - t
            config = PanoramaConfig(src=tuple(str(s) for s in subs), n=len(found), size=(256, 256))
            t = time.perf_counter()
            specs = plan(config, found)
            t_plan = time.perf_counter() - t
            assert not skipped and len(specs) == len(found)
            rows.append((len(found), t_discover, t_plan))
    print(f"machine: {cpu_name()}, {len(os.sched_getaffinity(0))} usable cores; {args.plan_count} files "
          f"(16x32 .jpg/.hdr/.pfm, 1000 per folder) written in {made:.1f} s")
    print(f"{'panoramas':>10} {'discover s':>11} {'us/file':>8} {'plan s':>8} {'us/sample':>10} {'total s':>8}")
    for n, d, p in rows:
        print(f"{n:>10} {d:>11.2f} {d / n * 1e6:>8.1f} {p:>8.2f} {p / n * 1e6:>10.1f} {d + p:>8.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=["render", "large", "plan"], default="render")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--size", type=int, default=256, help="square render size")
    parser.add_argument("--fov", type=float, default=60.0)
    parser.add_argument("--src", default=None, help="panorama file (default: the built-in courtyard.jpg)")
    parser.add_argument("--naive-samples", type=int, default=5, help="samples timed for the slow naive loop")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best is reported)")
    parser.add_argument("--panoramas", type=int, default=6, help="--case large: generated 9104x4552 JPEGs")
    parser.add_argument("--plan-count", type=int, default=100_000, help="--case plan: tiny panoramas")
    parser.add_argument("--jpegs", default=None, help="--case large: folder to keep the generated JPEGs in")
    parser.add_argument("--tmp", default=None, help="folder for the generated files (default: the system's)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    {"render": bench_render, "large": bench_large, "plan": bench_plan}[args.case](args)


if __name__ == "__main__":
    main()
