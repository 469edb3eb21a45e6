"""What machine a benchmark ran on (printed with every figure)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def torch_machine(device: str) -> str:
    """The GPU's name, or the CPU with torch's thread count (torch benchmarks)."""
    import os

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"{cpu_name()}, {torch.get_num_threads()} torch threads, {os.cpu_count()} logical CPUs"


def torch_setup(device: str, threads: int | None) -> tuple[str, bool]:
    """Apply ``--threads`` and resolve ``--device auto``: ``(device, on_gpu)``.

    On a GPU, cuDNN picks its fastest kernels for the fixed shapes timed.
    """
    import torch

    if threads:
        torch.set_num_threads(threads)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = device.startswith("cuda")
    if gpu:
        torch.backends.cudnn.benchmark = True
    return device, gpu


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"640x480,1280x720"`` -> ``[(640, 480), (1280, 720)]`` (width, height)."""
    return [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",")]
