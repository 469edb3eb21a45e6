"""Blur2Video inference speed: blurred images per second at 256×256 and 1280×720.

One forward pass turns one blurred image into its K frames; this script times
that pass (batch 1, image already in memory, no I/O) for each K asked
(``--k 1,3,7``: the middle-frame network alone, the panorama setting, the
high-speed setting) and each size, in interleaved rounds (the median of the
rounds is reported), and prints parameter counts, images/s, frames/s and the
cost of each K relative to K = 1 measured in the same run. The paper gives no
speed figure to compare with.

CPU: float32 (``--amp bf16`` adds bf16 autocast). GPU (when CUDA is
available): float32 and bf16 autocast + channels_last.

    python benchmarks/bench_blur2video.py                        # K = 1, 3, 7 at both sizes
    python benchmarks/bench_blur2video.py --k 3 --sizes 256x256 --rounds 5
    python benchmarks/bench_blur2video.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_models import create_model  # noqa: E402
from machine import parse_sizes, torch_machine, torch_setup  # benchmarks/machine.py (run from here)


def time_once(model, image: torch.Tensor, device: str, amp: bool) -> float:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    ctx = (torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if amp
           else torch.autocast(torch.device(device).type, enabled=False))
    with torch.inference_mode(), ctx:
        sync()
        t0 = time.perf_counter()
        model(image)
        sync()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--sizes", default="256x256,1280x720", help="WxH list")
    parser.add_argument("--k", default="1,3,7", help="frames K to time (odd)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default: 3 CPU, 50 GPU)")
    parser.add_argument("--amp", choices=["none", "bf16", "both"], default="none", help="CPU precision runs")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    device, gpu = torch_setup(args.device, args.threads)
    rounds = args.rounds or (50 if gpu else 3)
    sizes = parse_sizes(args.sizes)
    ks = [int(k) for k in args.k.split(",")]
    if gpu:
        configs = [("fp32", False, False), ("bf16+channels_last", True, True)]
    else:
        configs = [(name, name == "bf16", False) for name in
                   {"none": ["fp32"], "bf16": ["bf16"], "both": ["fp32", "bf16"]}[args.amp]]

    models = {}
    for k in ks:
        torch.manual_seed(0)
        models[k] = create_model("blur2video", frames=k).eval().to(device)
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    header = {"machine": torch_machine(device), "device": device, "torch": torch.__version__,
              "model": "blur2video (defaults)", "params": params, "rounds": rounds,
              "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    print(f"# {header['machine']} | torch {torch.__version__} | load average {header['load_average']}",
          flush=True)
    for k in ks:
        print(f"# blur2video K={k}: {params[k] / 1e6:.2f} M parameters", flush=True)
    print(f"# {'config':<20} {'size':>10} {'K':>3} {'images/s':>10} {'frames/s':>10} {'s/image':>9} "
          f"{'x K=1 time':>10}", flush=True)
    results = []
    for name, amp, channels_last in configs:
        for w, h in sizes:
            image = torch.rand(1, 3, h, w, device=device)
            for m in models.values():
                if channels_last:
                    m.to(memory_format=torch.channels_last)
                time_once(m, image, device, amp)  # warm-up
            times = {k: [] for k in ks}
            for _ in range(rounds):  # interleaved: every K sees the same machine state
                for k, m in models.items():
                    times[k].append(time_once(m, image, device, amp))
            base = statistics.median(times[ks[0]])
            for k in ks:
                t = statistics.median(times[k])
                r = {"config": name, "size": f"{w}x{h}", "frames": k, "s_per_image": t, "images_per_s": 1 / t,
                     "frames_per_s": k / t, "time_vs_first_k": t / base}
                results.append(r)
                print(f"  {name:<20} {r['size']:>10} {k:>3} {r['images_per_s']:>10.3f} {r['frames_per_s']:>10.3f} "
                      f"{t:>9.2f} {r['time_vs_first_k']:>10.2f}", flush=True)
            for m in models.values():
                m.to(memory_format=torch.contiguous_format)
    if args.json:
        args.json.write_text(json.dumps({**header, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
