"""A fourth model is one file: a toy model in a temporary file, found through ``BLURSYNTH_MODELS``,
trains, scores, validates and deblurs through the CLI, and no project file names it.

The CLI runs in one subprocess (so that the toy model never enters this test process's
registry), which drives the four commands with click's CliRunner and reports what they did.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tests.helpers import random_frames, write_frames
from reference_models import ModelTask, list_models, model_for_data, task_for
from tests.helpers.handmade import make_tiny_dataset

REPO = Path(__file__).resolve().parents[2]

TOY = '''
"""A toy window video model: each latent frame is its blurry frame plus one 3x3 convolution
of the frame and its two neighbours."""
import torch
import torch.nn as nn

from reference_models import ModelTask, register_model


class ToyTask(ModelTask):
    learns_from = "video"
    inference = "window"
    validates = {"video": 100}  # above every shipped family: validate picks it for video data
    validator = "toy"
    defaults = {"batch": 2, "patch": 16, "clip_len": 3, "lr": 1e-3, "steps": 3}
    probe = {"steps": 3}


class ToyNet(nn.Module):
    def __init__(self, frames: int = 3):
        super().__init__()
        self.frames, self.context = frames, frames // 2
        self.conv = nn.Conv2d(3 * frames, 3, 3, padding=1)

    def forward(self, clip, pad=False):
        m = self.context
        if pad and m:
            clip = torch.cat([clip[:, :1]] * m + [clip] + [clip[:, -1:]] * m, 1)
        outs = [clip[:, n] + self.conv(clip[:, n - m:n + m + 1].flatten(1, 2))
                for n in range(m, clip.shape[1] - m)]
        return torch.stack(outs, 1)


ToyNet.task = ToyTask()


@register_model
def toy(**kwargs) -> ToyNet:
    return ToyNet(**kwargs)
'''

DRIVER = '''
import json, sys
from click.testing import CliRunner
from blursynth.cli import main
from reference_models import list_models, model_for_data

runner = CliRunner()
report = {"models": list_models(), "video_validator": model_for_data(["video"])}
for name, args in json.loads(sys.argv[1]):
    result = runner.invoke(main, args)
    report[name] = {"code": result.exit_code, "output": result.output[-2000:], "stdout": result.stdout}
print(json.dumps(report))
'''


def test_a_toy_fourth_model_trains_scores_validates_and_deblurs(tmp_path):
    toy = tmp_path / "toy_model.py"
    toy.write_text(TOY)
    data = make_tiny_dataset(tmp_path / "data", n_sources=4, per_source=1, seq_len=3, seed=3)
    test = make_tiny_dataset(tmp_path / "test", n_sources=2, per_source=1, seq_len=3, seed=7)
    frames = random_frames(5, h=12, w=16, seed=4)
    write_frames(tmp_path / "frames", frames)
    small = ["--batch", "2", "--patch", "16", "--clip-len", "3", "--workers", "0", "-q"]
    run, out = tmp_path / "run", tmp_path / "deblurred"
    commands = [
        ("train", ["train-reference", "toy", "--data", str(data), "--out", str(run), "--steps", "3",
                   "--val-every", "2", "--val-samples", "1", "--val-crop", "16", *small]),
        ("eval", ["eval-reference", str(run), "--data", str(data), "--json", "-q"]),
        ("validate", ["validate", str(data), "--test", str(test), "--steps", "2", "--out", str(tmp_path / "v"),
                      *small]),
        ("deblur", ["deblur", str(tmp_path / "frames"), "--run", str(run), "--out", str(out), "-q"]),
        ("help", ["deblur", "--help"]),
    ]
    env = {**os.environ, "BLURSYNTH_MODELS": str(toy), "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    for name, _ in commands:
        assert report[name]["code"] == 0, (name, report[name]["output"])

    # found by the registry without an edit to the package, and picked for video data by its priority
    assert "toy" in report["models"] and report["video_validator"] == "toy"
    assert "toy: on the frames around each frame" in report["help"]["output"]  # help read from its task

    # train: its task's defaults and the given flags; eval: scored on held-out samples of the data
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "toy" and config["steps"] == 3 and config["lr"] == 1e-3
    scored = json.loads(report["eval"]["stdout"])
    assert scored["model"] == "toy" and scored["n_samples"] >= 1

    # validate picked the toy model itself (no --model) and scored it on the test set
    verdict = json.loads((tmp_path / "v" / "validate.json").read_text())["verdicts"][0]
    assert verdict["model"] == "toy" and verdict["steps"] == 2 and verdict["trusted"]["samples"]
    assert "toy" in report["validate"]["stdout"].strip().splitlines()[-1]  # the verdict line

    # deblur: one PNG per frame, each the model's window output, as an oracle written here computes it
    weights = torch.load(run / "checkpoint.pt", weights_only=True)["state_dict"]  # what --run RUN loads
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).double() / 255.0  # [T, 3, H, W]
    padded = torch.cat([x[:1], x, x[-1:]])
    for n in range(len(frames)):
        window = padded[n:n + 3].reshape(1, 9, *x.shape[-2:])
        expected = x[n] + F.conv2d(window, weights["conv.weight"].double(), weights["conv.bias"].double(),
                                   padding=1)[0]
        expected = (expected.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()
        got = cv2.cvtColor(cv2.imread(str(out / f"f{n}.png")), cv2.COLOR_BGR2RGB).astype(float)
        assert np.abs(got - expected).max() <= 1  # float32 against float64: at most one level
    record = json.loads((out / "deblur.json").read_text())
    assert record["model"] == "toy" and record["frames_per_input"] == 1 and record["n_frames"] == 5

    # no project file names the toy model: it lives in its one file
    assert "toy" not in (REPO / "reference_models" / "__init__.py").read_text()


def _family(name: str, form: str, priority: int):
    """A registered constructor (not called) whose class's task validates ``form`` at ``priority``."""
    task = type(f"Task_{name}", (ModelTask,), {"learns_from": form, "inference": "image" if form != "video"
                                               else "window", "validates": {form: priority}, "validator": name})()
    net = type(f"Net_{name}", (torch.nn.Module,), {"task": task})

    def constructor(**kwargs):
        return net(**kwargs)

    constructor.__name__ = name
    constructor.__annotations__ = {"return": net}
    return constructor


def test_validate_picks_the_highest_priority_then_the_first_name(monkeypatch):
    """The tie rule of model_for_data, on families added to the registry for this test only."""
    import reference_models.registry as registry

    list_models()  # the scan has run, so the families below are all that is added
    for name, form, priority in [("zz_pair", "pair", 50), ("aa_pair", "pair", 50), ("mm_pair", "pair", 40),
                                 ("zz_video", "video", -5)]:
        monkeypatch.setitem(registry._model_entrypoints, name, _family(name, form, priority))
    assert model_for_data(["pair"]) == "aa_pair"  # 50 beats 40 and the shipped family's 10; a tie: a before z
    assert model_for_data(["latent", "pair"]) == model_for_data(["latent"])  # the first form with a validator
    assert model_for_data(["video"]) != "zz_video"  # below the shipped video families
    assert task_for("mm_pair").validates == {"pair": 40}  # read from the annotation, nothing built


def test_a_model_file_that_does_not_load_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "broken_model.py"
    bad.write_text("raise RuntimeError('half-written')\n")
    env = {**os.environ, "BLURSYNTH_MODELS": str(bad), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "blursynth", "train-reference", "dtb", "--steps", "1"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and not (tmp_path / "runs").exists()
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "BLURSYNTH_MODELS" in lines[0] and str(bad) in lines[0] and "half-written" in lines[0]
