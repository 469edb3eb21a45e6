"""DistributedDataParallel through torchrun: 2 CPU processes (gloo) with batch b train
the same model as 1 process with batch 2b (same samples each step, averaged gradients)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference_models.train import TrainConfig, load_checkpoint, train
from tests.helpers.handmade import make_tiny_dataset

ARGS = ["--model-arg", "blocks=1", "--model-arg", "width=40", "--patch", 16, "--clip-len", 4, "--lr", 1e-3, "--workers", 0,
        "--steps", 3, "-q"]


def test_torchrun_two_processes_equal_one_with_twice_the_batch(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_sources=3, per_source=2, seq_len=4)
    blursynth = Path(sys.executable).with_name("blursynth")
    if not blursynth.exists():
        pytest.skip("the blursynth console script is not installed next to python")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           "--no-python", str(blursynth), "train-reference", "dtb", "--data", str(data),
           "--out", str(tmp_path / "ddp"), "--batch", "2", "--device", "cpu", *map(str, ARGS)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]

    torch.set_num_threads(1)
    try:
        train(TrainConfig(data=str(data), out=str(tmp_path / "one"), model="dtb",
                          model_args={"blocks": 1, "width": 40}, steps=3, batch=4, patch=16, clip_len=4,
                          lr=1e-3, workers=0, device="cpu", quiet=True))
    finally:
        torch.set_num_threads(os.cpu_count() or 1)
    a = load_checkpoint(tmp_path / "ddp")["state_dict"]
    b = load_checkpoint(tmp_path / "one")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)
    assert load_checkpoint(tmp_path / "ddp")["step"] == 3
