"""End to end on the high-speed pipeline's output: sample clips -> highspeed -> split ->
train-reference -> eval-reference, all through the CLI."""

from __future__ import annotations

import json

from tests.helpers import run_ok


def test_train_and_eval_on_highspeed_output(tmp_path):
    for seed in range(3):
        run_ok("sample", tmp_path / "clips" / f"c{seed}", "--frames", 40, "--size", "48x32", "--seed", seed)
    data = tmp_path / "data"
    run_ok("highspeed", "--src", tmp_path / "clips", "--tau", 5, "--T", 5, "--seq-len", 4, "--out", data,
         "--workers", 1, "-q")
    run_ok("split", data, "--val", 0.0, "--test", 0.34, "--seed", 0)
    split = json.loads((data / "split.json").read_text())
    assert len(split["sources"]["test"]) == 1 and len(split["sources"]["train"]) == 2

    run = tmp_path / "run"
    run_ok("train-reference", "dtb", "--data", data, "--out", run, "--steps", 4, "--batch", 2, "--patch", 24,
         "--model-arg", "blocks=1", "--model-arg", "width=40", "--workers", 0, "-q")
    # 13 shrunk to the runs of consecutive exposures: 2 samples of 4 exposures per clip.
    assert json.loads((run / "config.json").read_text())["clip_len"] == 8
    out = json.loads(run_ok("eval-reference", run, "--data", data, "--json", "-q").stdout)
    assert out["split"] == "test" and out["n_frames"] == 4 * out["n_samples"] > 0
    assert 15 < out["psnr"]["input"] < 60 and abs(out["psnr"]["gain"]) < 3  # an untrained-ish model
