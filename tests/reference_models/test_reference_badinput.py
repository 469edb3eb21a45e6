"""Bad input to the training commands: one line naming the option, exit 1, never a traceback.

Table-driven (arguments -> words the message must contain), so that each case
found by hand or by fuzzing stays fixed. ``{data}`` and ``{run}`` stand for a
tiny dataset and a trained run; ``{tmp}`` for a fresh folder.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import assert_one_line_error, run_cli, run_ok
from reference_models.checkpoint import load_checkpoint
from tests.helpers.handmade import make_tiny_dataset

TINY = ["--model-arg", "blocks=1", "--model-arg", "width=16", "--model-arg", "feature_channels=8",
        "--workers", 0, "-q"]
TRAIN = ["train-reference", "dtb", "--data", "{data}", "--out", "{tmp}/run", "--steps", 2, "--batch", 2,
         "--patch", 16, "--clip-len", 3, *TINY]

CASES = [
    # eval-reference
    (["eval-reference", "{run}", "--data", "{data}", "--crop", 0], ["--crop 0", "at least 11"]),
    (["eval-reference", "{run}", "--data", "{data}", "--crop", -1], ["--crop -1"]),
    (["eval-reference", "{run}", "--data", "{data}", "--crop", 7], ["--crop 7", "SSIM"]),
    (["eval-reference", "{run}", "--data", "{data}", "--max-samples", -1], ["--max-samples -1"]),
    (["eval-reference", "{run}", "--data", "{data}", "--split", "train"], ["trained on"]),
    # train-reference: numbers out of range
    ([*TRAIN, "--lr", "inf"], ["--lr inf", "finite"]),
    ([*TRAIN, "--lr", "nan"], ["--lr nan"]),
    ([*TRAIN, "--weight-reg", "inf"], ["--weight-reg inf"]),
    ([*TRAIN, "--time-budget", -1], ["--time-budget -1"]),
    ([*TRAIN, "--time-budget", "nan"], ["--time-budget nan"]),
    ([*TRAIN, "--seed", -1], ["--seed -1"]),
    ([*TRAIN, "--steps", 0], ["--steps 0"]),
    ([*TRAIN, "--patch", 4], ["--patch 4"]),
    ([*TRAIN, "--val-crop", 7], ["--val-crop 7"]),
    ([*TRAIN, "--device", "tpu"], ["--device tpu"]),
    ([*TRAIN, "--model-arg", "blocks"], ["--model-arg blocks", "KEY=VALUE"]),
    ([*TRAIN, "--model-arg", "nope=1"], ["model 'dtb'", "nope"]),
    ([*TRAIN, "--clip-len", 2], ["--clip-len 2", "at least 3"]),
    # a loss that overflows stops with one line instead of writing non-finite weights
    ([*TRAIN, "--weight-reg", "1e300"], ["loss is inf", "--weight-reg"]),
    # a batch that cannot fit gives the estimate
    ([*TRAIN, "--batch", 100000, "--patch", 40, "--clip-len", 5], ["--batch 100000", "GiB", "available"]),
    # validate
    (["validate", "{data}", "--budget", "nan", *TINY], ["--budget nan"]),
    (["validate", "{data}", "--budget", "inf", *TINY], ["--budget inf"]),
    (["validate", "{data}", "--budget", 0, *TINY], ["--budget 0"]),
    (["validate", "{data}", "--max-test-samples", -1, *TINY], ["--max-test-samples -1"]),
    (["validate", "{data}", "--model", "nope", *TINY], ["--model nope"]),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("badinput")
    data = make_tiny_dataset(root / "data", n_sources=3, per_source=2)
    run_ok(*_fill(TRAIN, data, None, root))
    return data, root / "run"


def _fill(args, data, run, tmp):
    return [str(a).format(data=data, run=run, tmp=tmp) for a in args]


@pytest.mark.parametrize("args, words", CASES, ids=[" ".join(map(str, c[0][:1] + c[0][-2:])) for c in CASES])
def test_bad_input_gives_one_line(trained, tmp_path, args, words):
    data, run = trained
    assert_one_line_error(run_cli(*_fill(args, data, run, tmp_path)), *words)
    for ckpt in (tmp_path / "run").glob("*.pt"):  # whatever was written holds finite weights
        assert all(torch.isfinite(v).all() for v in load_checkpoint(ckpt)["state_dict"].values())


def _blursynth() -> list[str]:
    return [sys.executable, "-c", "from blursynth.cli import main; main()"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_training_writes_a_checkpoint_that_resumes_bit_for_bit(trained, tmp_path, sig):
    data, _ = trained
    args = ["train-reference", "dtb", "--data", str(data), "--batch", 2, "--patch", 16, "--clip-len", 3,
            "--log-every", 1, "--ckpt-every", 1000, *TINY]
    args = [str(a) for a in args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*_blursynth(), *args, "--out", str(tmp_path / "a"), "--steps", "100000"],
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    log = tmp_path / "a" / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.05)
    proc.send_signal(sig)  # to the main process only, as `kill` or a scheduler would
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig  # as a shell reports a process that signal stopped
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and signal.Signals(sig).name in lines[0] and "--resume" in lines[0], err
    stopped = load_checkpoint(tmp_path / "a")["step"]
    assert stopped >= 3 and f"at step {stopped}" in lines[0]
    assert (tmp_path / "a" / "curves.png").stat().st_size > 0  # the curves so far, drawn before stopping

    # --resume continues from there; the result equals a run that was never interrupted.
    if sig == signal.SIGINT:
        return  # the same checkpoint path as SIGTERM: one bit-for-bit comparison is enough
    target = str(stopped + 3)
    done = subprocess.run([*_blursynth(), *args, "--out", str(tmp_path / "a"), "--steps", target, "--resume"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    straight = subprocess.run([*_blursynth(), *args, "--out", str(tmp_path / "b"), "--steps", target],
                              capture_output=True, text=True, env=env, timeout=120)
    assert straight.returncode == 0, straight.stderr
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert a["step"] == b["step"] == int(target)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    records = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, int(target) + 1))
