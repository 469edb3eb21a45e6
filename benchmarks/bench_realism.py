"""Benchmark: the cost of each realism option per 1280x720 blurred frame, against plain synthesis.

Renders the same highspeed samples (tau = 7, T = tau, 1280x720 PNG frames of
the synthetic clip, one OpenCV thread, no read-ahead thread) with each option
and plain, rounds interleaved, and prints the median time per blurred frame and
its ratio to plain (decoding included, shard writing excluded: ``render`` only).
A panorama section does the same for a 1280x720 camera on the built-in 8-bit
(.jpg) sample panorama.

Usage: python benchmarks/bench_realism.py [--samples 3] [--rounds 3] [--no-interpolate-16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from blursynth.highspeed import HighspeedConfig, plan
from blursynth.highspeed import render as render_highspeed
from blursynth.panorama import PanoramaConfig
from blursynth.panorama.pipeline import discover as discover_panoramas
from blursynth.panorama.plan import plan as plan_panorama
from blursynth.panorama.render import render as render_panorama
from blursynth.sources.clips import discover
from blursynth.sources.panoramas import builtin_panoramas
from blursynth.synthetic import write_sample_clip
from blursynth.run.worker import Worker
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

HIGHSPEED_CASES = {
    "plain": {},
    "noise": {"noise_shot": (0.001, 0.01), "noise_read": (0.002, 0.01)},
    "saturation": {"saturation": (0.25, 1.75)},
    "jpeg": {"jpeg": (60, 95)},
    "noise+saturation+jpeg": {"noise_shot": (0.001, 0.01), "noise_read": (0.002, 0.01),
                              "saturation": (0.25, 1.75), "jpeg": (60, 95)},
    "motion measure": {"motion": True},
    "interpolate 4": {"interpolate": 4},
    "interpolate 16": {"interpolate": 16},
}
PANORAMA_CASES = {
    "plain": {},
    "noise": {"noise_shot": (0.001, 0.01), "noise_read": (0.002, 0.01)},
    "jpeg": {"jpeg": (60, 95)},
}


def time_renders(render, specs) -> float:
    worker = Worker(1)
    start = time.perf_counter()
    for spec in specs:
        render(spec, worker)
    return (time.perf_counter() - start) / sum(spec.seq_len for spec in specs)


def table(title: str, times: dict[str, list[float]]) -> None:
    med = {k: statistics.median(v) for k, v in times.items()}
    print(title)
    for name, t in med.items():
        print(f"  {name:24s} {1000 * t:9.1f} ms/frame   {t / med['plain']:6.2f}x plain")


def interleaved(render, specs: dict, rounds: int, label: str) -> dict:
    """Time every case once per round, rounds interleaved (all cases see the same load)."""
    times = {name: [] for name in specs}
    for r in range(rounds):
        for name in specs:
            times[name].append(time_renders(render, specs[name]))
            print(f"  round {r + 1} {label}{name}: {1000 * times[name][-1]:.1f} ms/frame", flush=True)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3, help="blurred frames per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-interpolate-16", action="store_true", help="skip the slowest case")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    cases = dict(HIGHSPEED_CASES)
    if args.no_interpolate_16:
        del cases["interpolate 16"]
    with tempfile.TemporaryDirectory(prefix="bench_realism_") as tmp:
        print(f"machine: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
              flush=True)
        src = write_sample_clip(Path(tmp) / "clip", n_frames=7 * args.samples, size=(1280, 720))
        clips, _ = discover((str(src),))
        specs = {name: plan(HighspeedConfig(src=(str(src),), tau=(7,), T="tau", **kw), clips)[0][:args.samples]
                 for name, kw in cases.items()}
        time_renders(render_highspeed, specs["plain"])  # warm the page cache
        times = interleaved(render_highspeed, specs, args.rounds, "")
        table("highspeed, 1280x720, tau = 7 (time per blurred frame, decoding included):", times)

        # Panorama: the built-in 8-bit rendition (saturation needs 8-bit sources).
        ldr = next(p for p in builtin_panoramas() if p.suffix.lower() == ".jpg")
        pano_cases = dict(PANORAMA_CASES, saturation={"saturation": (0.25, 1.75)})
        pconfigs = {name: PanoramaConfig(src=(str(ldr),), n=args.samples, size=(1280, 720), latent=0, **kw)
                    for name, kw in pano_cases.items()}
        pspecs = {name: plan_panorama(c, discover_panoramas(c)[0]) for name, c in pconfigs.items()}
        time_renders(render_panorama, pspecs["plain"])  # warm the panorama cache
        ptimes = interleaved(render_panorama, pspecs, args.rounds, "panorama ")
        table("panorama, 8-bit panorama, 1280x720 camera (time per blurred frame):", ptimes)


if __name__ == "__main__":
    main()
