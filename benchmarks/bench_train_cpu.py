"""CPU training speed of each model's probe preset (issue 20, item 8), as ratios in one run.

For each model, one training step of its probe preset (its own batch, crop and clip
length, on random frames of those shapes) is timed in several variants, in
interleaved rounds so that a change of machine load hits every variant alike:

* ``fp32``: float32, NCHW (the reference);
* ``channels_last``: NHWC convolutions (oneDNN);
* ``bf16``: bf16 autocast on the CPU (fast only with AVX-512 BF16 or AMX);
* ``compile``: ``torch.compile`` of the channels_last model (first calls excluded);
* ``1 thread``: one intra-op thread, the other core left to a DataLoader worker.

Prints s/step per variant and its ratio to ``fp32``; the shipped training
(reference_models/weights/train.sh) uses what wins here.

    python benchmarks/bench_train_cpu.py [--models dtb,blur2video,fsta] [--rounds 3] [--steps 4]
"""

from __future__ import annotations

import argparse
import time

import torch

from machine import torch_machine
from reference_models import create_model, task_of

VARIANTS = ("fp32", "channels_last", "bf16", "compile", "1 thread")


def probe_batch(name: str):
    """A model of the probe's size and one batch of its probe's shapes (random frames)."""
    net = create_model(name)
    preset = task_of(net).preset("probe")
    net = create_model(name, **preset.get("model_args", {}))
    b, p = preset["batch"], preset["patch"]
    if task_of(net).learns_from == "video":
        x = torch.rand(b, preset["clip_len"], 3, p, p)
    else:
        x = torch.rand(b, 3, p, p)
    return net, x


def step_time(net, x, steps: int, amp: bool, threads: int) -> float:
    torch.set_num_threads(threads)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    t0 = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            y = net(x)
        loss = y.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="dtb,blur2video,fsta")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# {torch_machine('cpu')}; torch {torch.__version__}; "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    variants = args.variants.split(",")
    for name in args.models.split(","):
        net, x = probe_batch(name)
        nets = {"fp32": net, "bf16": net, "1 thread": net}
        cl = create_model(name, **{k: v for k, v in task_of(net).preset("probe").get("model_args", {}).items()})
        cl.load_state_dict(net.state_dict())
        cl = cl.to(memory_format=torch.channels_last)
        nets["channels_last"] = cl
        if "compile" in variants:
            nets["compile"] = torch.compile(cl)
            step_time(nets["compile"], x, 2, False, args.threads)  # compilation, not timed
        for v in variants:
            step_time(nets[v], x, 1, v == "bf16", 1 if v == "1 thread" else args.threads)  # warm-up
        best = {v: float("inf") for v in variants}
        for _ in range(args.rounds):
            for v in variants:
                t = step_time(nets[v], x, args.steps, v == "bf16", 1 if v == "1 thread" else args.threads)
                best[v] = min(best[v], t)
        shape = "x".join(str(s) for s in x.shape)
        for v in variants:
            print(f"{name:11s} {shape:14s} {v:14s} {best[v]:7.3f} s/step  {best['fp32'] / best[v]:5.2f}x fp32",
                  flush=True)


if __name__ == "__main__":
    main()
