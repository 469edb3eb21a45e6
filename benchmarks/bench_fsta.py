"""FSTA vs a full non-local block: peak memory and time of forward + backward.

Suin & Rajagopalan claim that factorized spatio-temporal attention (FSTA) fuses
frames with much less memory than a non-local block of the same
spatio-temporal size. This script measures it on the same input, features of
T frames of H×W with C channels (batch 1, float32, the input requiring a
gradient as a feature map inside a network does):

* ``fsta`` — :class:`reference_models.fsta.FSTA` (Eqs. 1–6, M = 8, N = 4),
  output for the current (centre) frame;
* ``nonlocal`` — the non-local block of Wang et al. 2018 (embedded Gaussian,
  θ/φ/g 1×1×1 convs to C/2 channels, no subsampling, z = x + W_z y), over all
  THW×THW pairs, output for all T frames: the block the issue names;
* ``nonlocal-R`` — the same block with queries from the current frame only
  (HW×THW pairs), output for the current frame: what a non-local *fusion* into
  the current frame needs, the like-for-like comparison with FSTA.

Each measurement follows one untimed forward + backward at the same size. CPU
peak memory: the process's peak resident set (VmHWM, reset through
/proc/self/clear_refs just before) minus its resident set before the measured
pass, with glibc told to return every freed block of 64 KiB or more to the OS
(so that the resident set follows the live tensors; Linux/glibc only). CUDA: ``torch.cuda.max_memory_allocated``
over the allocation before. Time: the best of ``--repeats`` further passes (the
least disturbed by other work on a shared machine; the median is in the JSON). A non-local size is skipped (``-``) when its attention
matrices alone (3 × (queries·THW) float32: logits, softmax, gradient) would
exceed ``--cap-gb``.

    python benchmarks/bench_fsta.py --quick            # seconds
    python benchmarks/bench_fsta.py                    # CPU, H = W = 16 … 128, cap 6 GB
    python benchmarks/bench_fsta.py --device cuda --sizes 32,64,96,128,192 --cap-gb 60
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_models.fsta import FSTA  # noqa: E402
from machine import cpu_name  # benchmarks/machine.py (scripts run from this folder)

BLOCKS = ("fsta", "nonlocal", "nonlocal-R")


class NonLocal(nn.Module):
    """Non-local block (Wang et al. 2018, Eq. 1–2, embedded Gaussian) over a T×H×W volume.

    y_i = Σ_j softmax_j(θ(x_i)ᵀ φ(x_j)) g(x_j), z_i = x_i + W_z y_i, with i over
    every position (``centre_only=False``) or over the centre frame's positions.
    """

    def __init__(self, channels: int, centre_only: bool = False):
        super().__init__()
        inner = max(1, channels // 2)
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        self.w_z = nn.Conv3d(inner, channels, 1)
        self.centre_only = centre_only

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, C, H, W] -> [B, T or 1, C, H, W]."""
        v = x.transpose(1, 2)                                           # [B, C, T, H, W]
        b, c, t, h, w = v.shape
        q = v[:, :, t // 2:t // 2 + 1] if self.centre_only else v
        theta = self.theta(q).flatten(2).transpose(1, 2)                 # [B, Q, C']
        phi = self.phi(v).flatten(2)                                     # [B, C', THW]
        g = self.g(v).flatten(2).transpose(1, 2)                         # [B, THW, C']
        attn = torch.softmax(theta @ phi, dim=-1)                        # [B, Q, THW]
        y = (attn @ g).transpose(1, 2).reshape(b, -1, q.shape[2], h, w)
        return (q + self.w_z(y)).transpose(1, 2)


def make_block(name: str, channels: int, frames: int) -> nn.Module:
    if name == "fsta":
        return FSTA(channels, frames=frames, spatial_maps=8, temporal_maps=4)
    return NonLocal(channels, centre_only=name == "nonlocal-R")


def attention_bytes(name: str, t: int, h: int, w: int) -> int:
    """float32 bytes of one attention matrix of the block (0 for FSTA)."""
    keys = t * h * w
    return {"fsta": 0, "nonlocal": keys * keys * 4, "nonlocal-R": h * w * keys * 4}[name]


def _status_bytes(field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak resident since the last reset) from /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak_rss() -> None:
    """Reset VmHWM to the current resident set (Linux ≥ 4.0: write 5 to clear_refs)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(name: str, t: int, h: int, w: int, c: int, repeats: int, device: str) -> dict:
    """Peak memory of a forward + backward (after one untimed), then the best time of ``repeats`` more."""
    torch.manual_seed(0)
    block = make_block(name, c, t).to(device)
    x = torch.randn(1, t, c, h, w, device=device, requires_grad=True)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        out = block(x)
        out.backward(torch.ones_like(out))
        sync()

    # One untimed pass at the same size first: kernels, thread pools and the allocator's caches
    # are then in place, and the peak below is what a training step of the block costs.
    step()
    block.zero_grad(set_to_none=True)
    x.grad = None
    if cuda:
        sync()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        step()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        _reset_peak_rss()
        before = _status_bytes("VmRSS")
        step()
        peak = _status_bytes("VmHWM") - before
    times = []
    for _ in range(repeats):
        block.zero_grad(set_to_none=True)
        x.grad = None
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"block": name, "T": t, "H": h, "W": w, "C": c, "peak_bytes": max(0, peak),
            "time_s": min(times) if times else None,
            "time_median_s": statistics.median(times) if times else None,
            "attention_bytes": attention_bytes(name, t, h, w)}


def malloc_returns_freed_memory() -> bool:
    """Make glibc hand every allocation of 64 KiB or more back to the OS when it is freed.

    glibc otherwise keeps freed blocks (its mmap threshold grows after each
    large free), and a later allocation reuses them without raising the
    resident set: the peak of one pass would then hide in the previous pass's
    memory. Returns False where glibc's ``mallopt`` is not available.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 64 * 1024)) and bool(libc.mallopt(m_trim_threshold, 0))
    except (OSError, AttributeError):
        return False


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{cpu_name()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} logical CPUs"


def _mb(v):
    return f"{v / 2**20:.1f}" if v is not None else "-"


def _ms(v):
    return f"{v * 1e3:.1f}" if v is not None else "-"


def _ratio(a, b):
    return f"{a / b:.1f}x" if a is not None and b else "-"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--frames", type=int, default=5, help="T (default 5)")
    parser.add_argument("--channels", type=int, default=64, help="C (default 64)")
    parser.add_argument("--sizes", default="16,24,32,48,64,96,128", help="H = W values")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes after the first (best is reported)")
    parser.add_argument("--cap-gb", type=float, default=6.0,
                        help="skip a non-local size whose attention matrices would exceed this (default 6)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quick", action="store_true", help="H = W = 16 only, two timed passes")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = "16", 2
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cpu" and not malloc_returns_freed_memory():
        print("# warning: glibc mallopt unavailable; CPU peaks may hide in memory freed earlier", flush=True)
    t, c = args.frames, args.channels
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# {machine(args.device)} | torch {torch.__version__} | T={t} C={c} batch 1 float32, "
          f"forward + backward | cap {args.cap_gb} GB", flush=True)
    print(f"# {'HxW':>7} {'THW':>7} | {'time ms: fsta':>13} {'nonlocal':>9} {'nl-R':>8} | "
          f"{'peak MB: fsta':>13} {'nonlocal':>9} {'nl-R':>8} | {'nonlocal/fsta: time':>19} {'mem':>7} | "
          f"{'nl-R/fsta: time':>15} {'mem':>7}", flush=True)
    results = []
    for s in sizes:
        row = {}
        for name in BLOCKS:
            if 3 * attention_bytes(name, t, s, s) > args.cap_gb * 1e9:
                row[name] = {"block": name, "T": t, "H": s, "W": s, "C": c, "skipped": "over the cap",
                             "attention_bytes": attention_bytes(name, t, s, s)}
            else:
                gc.collect()
                row[name] = measure(name, t, s, s, c, args.repeats, args.device)
            results.append(row[name])
        f, nl, nr = (row[n] for n in BLOCKS)
        print(f"  {s:>3}x{s:<3} {t * s * s:>7} | {_ms(f.get('time_s')):>13} {_ms(nl.get('time_s')):>9} "
              f"{_ms(nr.get('time_s')):>8} | {_mb(f.get('peak_bytes')):>13} {_mb(nl.get('peak_bytes')):>9} "
              f"{_mb(nr.get('peak_bytes')):>8} | {_ratio(nl.get('time_s'), f.get('time_s')):>19} "
              f"{_ratio(nl.get('peak_bytes'), f.get('peak_bytes')):>7} | "
              f"{_ratio(nr.get('time_s'), f.get('time_s')):>15} {_ratio(nr.get('peak_bytes'), f.get('peak_bytes')):>7}",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(args.device), "torch": torch.__version__,
                                         "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
