"""The GPU training script (gpu/train_reference.sh) runs end to end, here on the CPU with tiny settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from reference_models.__main__ import recipe_path

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(sys.platform != "linux", reason="bash, split and tar as on the GPU machine")
def test_train_reference_script_packs_a_scored_run_and_ship_unpacks_it(tmp_path):
    bindir = Path(sys.executable).parent  # python3 of this environment, as the GPU image's python3
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}", "DEVICE": "cpu", "SMOKE": "1",
           "MINUTES": "0.02", "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work"),
           "PYTHONPATH": str(REPO), "WHEELS": ""}
    run = subprocess.run(["bash", str(REPO / "gpu" / "train_reference.sh"), "dtb"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    parts = sorted((tmp_path / "out").glob("dtb.tar.part-*"))
    assert parts and all(p.stat().st_size <= 15 * 2**20 for p in parts)
    packed = tmp_path / "dtb.tar"
    packed.write_bytes(b"".join(p.read_bytes() for p in parts))
    with tarfile.open(packed) as tar:
        names = set(tar.getnames())
        report = json.load(tar.extractfile("eval.json"))
        recipe = tar.extractfile("dataset.toml").read()
    assert names == {"model.pt", "config.json", "log.jsonl", "curves.png", "eval.json", "dataset.toml"}
    # dataset.toml is the recipe that dtb's task names for its paper preset's data
    assert recipe == recipe_path("dtb", "paper").read_bytes()
    # scored on the held-out scene only: every sample comes from the interior panorama
    assert report["split"] == "all" and {item["source"] for item in report["per_sample"]} == {"interior.hdr"}

    # gpu/ship.sh unpacks the parts into a folder that eval-reference takes as a run (model.pt, no checkpoint);
    # into a folder that holds better weights, it ships nothing
    better = tmp_path / "better" / "dtb"
    better.mkdir(parents=True)
    (better / "eval.json").write_text(json.dumps({"psnr": {"gain": report["psnr"]["gain"] + 1.0}}))
    kept = subprocess.run(["bash", str(REPO / "gpu" / "ship.sh"), "dtb", str(tmp_path / "out")],
                          env={**env, "DEST": str(better)}, capture_output=True, text=True, timeout=60)
    assert kept.returncode == 0 and "kept the shipped weights" in kept.stderr
    assert sorted(p.name for p in better.iterdir()) == ["eval.json"]
    dest = tmp_path / "weights" / "dtb"
    ship = subprocess.run(["bash", str(REPO / "gpu" / "ship.sh"), "dtb", str(tmp_path / "out")],
                          env={**env, "DEST": str(dest)}, capture_output=True, text=True, timeout=60)
    assert ship.returncode == 0, ship.stderr
    assert sorted(p.name for p in dest.iterdir()) == sorted(names)
    data = tmp_path / "work" / "data" / f"{recipe_path('dtb', 'paper').stem}-test"  # the script's data of dtb's recipe
    scored = subprocess.run([sys.executable, "-m", "blursynth", "eval-reference", str(dest), "--data", str(data), "--split", "all", "--device", "cpu",
                             "--out", str(tmp_path / "again.json"), "-q"], env=env, capture_output=True, text=True,
                            timeout=300)
    assert scored.returncode == 0, scored.stderr
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["psnr"] == report["psnr"]  # the shipped weights are the ones that were scored
