"""Online inference speed of STRCNN+DTB: frames per second at 640×480 and 1280×720.

Kim et al. 2017 report about 24 fps (VGA) and 8 fps (HD) on a GTX 1080. This
script runs the online recurrence — one ``model.step`` per new frame, the state
kept across steps, frames already in device memory (decoding and I/O excluded) —
and prints fps per configuration and size, and the ratio to the paper's figures.

CPU: float32, and bf16 autocast with ``--amp bf16`` (or ``both``).
GPU (when CUDA is available): float32 and the fast path, bf16 autocast +
channels_last + ``torch.compile``; the target there is ≥ 10× the paper.

    python benchmarks/bench_dtb.py                       # CPU or GPU, both sizes
    python benchmarks/bench_dtb.py --frames 5 --sizes 640x480
    python benchmarks/bench_dtb.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_models import create_model  # noqa: E402
from machine import parse_sizes, torch_machine, torch_setup  # benchmarks/machine.py (run from here)

PAPER_FPS = {(640, 480): 24.0, (1280, 720): 8.0}  # Kim et al. 2017, GTX 1080


def measure(model, size, frames: int, warmup: int, device: str, amp: bool, channels_last: bool,
            compile_: bool) -> dict:
    w, h = size
    clip = torch.rand(1, frames + warmup + 2, 3, h, w, device=device)
    step = model.step
    if compile_:
        step = torch.compile(model.step, dynamic=False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    ctx = (torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if amp
           else torch.autocast(torch.device(device).type, enabled=False))
    t_first = time.perf_counter()
    with torch.inference_mode(), ctx:
        state = None
        for n in range(1, warmup + 1):
            _, state = step(clip[:, n - 1:n + 2], state)
            if n == 1:
                sync()
                t_first = time.perf_counter() - t_first
        sync()
        t0 = time.perf_counter()
        for n in range(warmup + 1, warmup + frames + 1):
            _, state = step(clip[:, n - 1:n + 2], state)
        sync()
        elapsed = time.perf_counter() - t0
    model.to(memory_format=torch.contiguous_format)
    fps = frames / elapsed
    return {"size": f"{w}x{h}", "fps": fps, "ms_per_frame": 1000.0 / fps, "frames": frames,
            "first_step_s": t_first, "paper_fps": PAPER_FPS.get(size),
            "x_paper": fps / PAPER_FPS[size] if size in PAPER_FPS else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--sizes", default="640x480,1280x720")
    parser.add_argument("--frames", type=int, default=None, help="timed steps (default: 10 CPU, 200 GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 2 CPU, 20 GPU)")
    parser.add_argument("--amp", choices=["none", "bf16", "both"], default=None,
                        help="CPU precision runs (default none; GPU always runs fp32 and the fast path)")
    parser.add_argument("--compile", action="store_true", help="also torch.compile on the CPU")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    device, gpu = torch_setup(args.device, args.threads)
    frames = args.frames or (200 if gpu else 10)
    warmup = args.warmup if args.warmup is not None else (20 if gpu else 2)
    sizes = parse_sizes(args.sizes)
    if gpu:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        configs = [("fp32", False, False, False), ("bf16+channels_last+compile", True, True, True)]
    else:
        amp = args.amp or "none"
        configs = []
        if amp in ("none", "both"):
            configs.append(("fp32", False, False, False))
        if amp in ("bf16", "both"):
            configs.append(("bf16", True, False, False))
        if args.compile:
            configs.append(("fp32+compile", False, False, True))

    torch.manual_seed(0)
    model = create_model("dtb").eval().to(device)
    params = sum(p.numel() for p in model.parameters())
    header = {"machine": torch_machine(device), "device": device, "torch": torch.__version__,
              "model": "dtb (paper defaults)", "params": params}
    print(f"# {header['machine']} | torch {torch.__version__} | dtb, {params / 1e6:.2f} M parameters",
          flush=True)
    print(f"# {'config':<28} {'size':>10} {'fps':>9} {'ms/frame':>9} {'x paper':>8}", flush=True)
    results = []
    for name, amp_on, cl, comp in configs:
        for size in sizes:
            r = measure(model, size, frames, warmup, device, amp_on, cl, comp)
            r["config"] = name
            results.append(r)
            ratio = f"{r['x_paper']:.2f}" if r["x_paper"] is not None else "-"
            print(f"  {name:<28} {r['size']:>10} {r['fps']:>9.2f} {r['ms_per_frame']:>9.1f} {ratio:>8}",
                  flush=True)
    if args.json:
        args.json.write_text(json.dumps({**header, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
