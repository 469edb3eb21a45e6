"""Training loop, checkpoints, resume, evaluation and the CLI commands, on a tiny dataset."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from blursynth.cli.common import load_recipe
from blursynth.errors import BlursynthError
from blursynth.dataset import iter_samples
from tests.helpers import run_cli, train_killed_at
from reference_models import create_model
from reference_models.checkpoint import load_checkpoint, model_from_checkpoint
from reference_models.data import ShardIndex, VideoClipDataset, to_float
from reference_models.dtb import DTBTask, weight_penalty
from reference_models.evaluate import evaluate
from reference_models.train import TrainConfig, resolve_defaults, train
from tests.helpers.handmade import make_split_tiny_dataset

ARGS = {"blocks": 1, "width": 16, "feature_channels": 8}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_split_tiny_dataset(tmp_path_factory.mktemp("train") / "data")


def _config(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), model="dtb", model_args=ARGS, steps=8, batch=2, patch=24,
                clip_len=4, lr=1e-3, workers=0, log_every=1, val_every=4, val_samples=2, ckpt_every=4,
                quiet=True)
    return TrainConfig(**{**base, **kw})


def _fixed_batch(data):
    ds = VideoClipDataset(ShardIndex(data), clip_len=4, patch=32)
    items = [ds[i] for i in range(0, len(ds), 3)]
    return (torch.stack([to_float(b["blur"]) for b in items]),
            torch.stack([to_float(b["sharp"]) for b in items]))


def test_a_few_dozen_steps_lower_the_loss(data, tmp_path):
    blur, sharp = _fixed_batch(data)

    def loss(model):
        with torch.no_grad():
            return float(((model(blur) - sharp[:, 1:3]) ** 2).mean())

    torch.manual_seed(0)
    before = loss(create_model("dtb", **ARGS))
    train(_config(data, tmp_path / "run", steps=40, batch=4, patch=32, val_every=1000,
                  ckpt_every=1000, log_every=10))
    after = loss(model_from_checkpoint(tmp_path / "run")[0])
    assert after < 0.98 * before
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [10, 20, 30, 40]


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_killed_run_resumes_bit_for_bit(data, tmp_path, monkeypatch):
    train(_config(data, tmp_path / "straight"))
    straight = load_checkpoint(tmp_path / "straight")

    # Kill the second run at step 6, after its step-4 checkpoint.
    train_killed_at(lambda: train(_config(data, tmp_path / "killed")), 6, monkeypatch)
    assert load_checkpoint(tmp_path / "killed")["step"] == 4

    # Resume with DataLoader workers: the data stream does not depend on them.
    train(_config(data, tmp_path / "killed", resume=True, workers=2))
    resumed = load_checkpoint(tmp_path / "killed")
    assert resumed["step"] == straight["step"] == 8
    assert _states_equal(resumed["state_dict"], straight["state_dict"])
    for k, state in straight["optimizer"]["state"].items():
        assert _states_equal(state, resumed["optimizer"]["state"][k])
    lines = [json.loads(x) for x in (tmp_path / "killed" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == list(range(1, 9))  # steps 5-6 not repeated


def test_checkpoint_loads_weights_only_and_holds_the_run(data, tmp_path):
    train(_config(data, tmp_path / "run", steps=4))
    for name in ("checkpoint.pt", "model.pt"):
        ckpt = torch.load(tmp_path / "run" / name, weights_only=True)
        assert ckpt["model"] == "dtb" and ckpt["step"] == 4 and ckpt["model_args"] == ARGS
        json.dumps(ckpt["config"])  # plain JSON-able values
        assert ckpt["config"]["patch"] == 24 and ckpt["config"]["split_file"].endswith("split.json")
        assert "val_psnr" in ckpt["metrics"]
    full = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert "optimizer" in full and "rng" in full
    assert "optimizer" not in torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    model, _ = model_from_checkpoint(tmp_path / "run")
    assert _states_equal(model.state_dict(), full["state_dict"])
    assert not list((tmp_path / "run").glob("*.tmp-*"))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 4


def test_run_folder_guards(data, tmp_path):
    train(_config(data, tmp_path / "run", steps=2))
    with pytest.raises(BlursynthError, match="--resume"):
        train(_config(data, tmp_path / "run", steps=2))
    with pytest.raises(BlursynthError, match="--lr differ"):
        train(_config(data, tmp_path / "run", steps=4, lr=5e-4, resume=True))
    with pytest.raises(BlursynthError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing")
    with pytest.raises(BlursynthError, match="--batch"):
        _config(data, tmp_path / "x", batch=0)


def test_small_frames_shrink_the_paper_defaults(data, tmp_path, capsys):
    config = _config(data, tmp_path / "run", steps=1, patch=128, clip_len=13, quiet=False)
    train(config)
    stored = load_checkpoint(tmp_path / "run")["config"]
    assert (stored["patch"], stored["clip_len"]) == (40, 5)
    assert "--patch 128 is larger" in capsys.readouterr().err


def test_learning_rate_schedule_and_penalty():
    task = DTBTask()
    c = resolve_defaults(TrainConfig(data="d", out="o"), task)
    assert all(getattr(c, field) == value for field, value in task.preset("paper").items() if field != "model_args")
    assert resolve_defaults(TrainConfig(data="d", out="o", batch=3), task).batch == 3  # a flag wins
    learning_rate = lambda step: task.learning_rate(c, step, 100)  # noqa: E731
    every = c.lr_decay_every  # a staircase in steps (Kim et al.: 0.96 every 10k)
    assert learning_rate(0) == learning_rate(every - 1) == c.lr
    assert learning_rate(every) == pytest.approx(c.lr * c.lr_decay)
    assert learning_rate(every * 5 // 2) == pytest.approx(c.lr * c.lr_decay ** 2)
    assert 0 < c.lr_decay < 1 and c.weight_reg > 0  # the paper's model decays, and penalizes its weights
    model = create_model("dtb", **ARGS)
    expected = sum(float((p.detach() ** 2).sum()) for n, p in model.named_parameters()
                   if n.endswith("weight"))  # conv weights only: no biases, no β
    assert float(weight_penalty(model).detach()) == pytest.approx(expected, rel=1e-6)


def _psnr_oracle(data: Path, sources: set[str]) -> float:
    vals = []
    for s in iter_samples(data):
        if s.meta["source"] in sources:
            for b, t in zip(s.arrays["blur"].astype(float), s.arrays["sharp"].astype(float)):
                vals.append(10 * np.log10(255 ** 2 / np.mean((b - t) ** 2)))
    return float(np.mean(vals))


def test_eval_reports_output_and_input(data, tmp_path):
    train(_config(data, tmp_path / "run", steps=4))
    report = evaluate(tmp_path / "run", data, split="test", progress=False)
    written = json.loads((tmp_path / "run" / "eval-test.json").read_text())
    for doc in (report, written):
        assert doc["format"] == "blursynth-eval/2" and doc["model"] == "dtb" and doc["step"] == 4
        assert set(doc["psnr"]) == set(doc["ssim"]) == {"output", "input", "gain"}
        assert doc["psnr"]["gain"] == pytest.approx(doc["psnr"]["output"] - doc["psnr"]["input"])
        assert 0 < doc["ssim"]["input"] < 1
    split = json.loads((data / "split.json").read_text())
    assert report["n_samples"] == len(report["per_sample"]) == split["n_samples"]["test"]
    assert report["n_frames"] == 5 * report["n_samples"]
    assert {p["source"] for p in report["per_sample"]} == set(split["sources"]["test"])
    assert report["psnr"]["input"] == pytest.approx(_psnr_oracle(data, set(split["sources"]["test"])))
    with pytest.raises(BlursynthError, match="--split nope"):
        evaluate(tmp_path / "run", data, split="nope", progress=False)


def test_recipe_gives_the_paper_schedule():
    from blursynth.cli.reference import train_reference
    recipe = load_recipe(REPO / "recipes" / "kim2017_dtb_train.toml", train_reference)
    assert recipe["steps"] == 300_000
    assert (recipe["batch"], recipe["patch"], recipe["clip_len"], recipe["lr"]) == (8, 128, 13, 1e-4)
    assert (recipe["lr_decay"], recipe["lr_decay_every"], recipe["weight_reg"]) == (0.96, 10_000, 1e-5)


_cli = run_cli


def test_cli_train_eval_split_validate(data, trusted_tiny, tmp_path):
    tiny = ["--model-arg", "blocks=1", "--model-arg", "width=40", "--batch", 2, "--patch", 24, "--clip-len", 3, "--workers", 0,
            "--lr", 1e-3, "-q"]
    r = _cli("train-reference", "dtb", "--data", data, "--out", tmp_path / "run", "--steps", 3,
             "--recipe", REPO / "recipes" / "kim2017_dtb_train.toml", *tiny)
    assert r.exit_code == 0, r.output
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["step"] == 3 and ckpt["config"]["lr_decay_every"] == 10_000  # flags beat the recipe

    r = _cli("eval-reference", tmp_path / "run", "--data", data, "--split", "val", "--json", "-q")
    assert r.exit_code == 0, r.output
    assert set(json.loads(r.stdout)["psnr"]) == {"output", "input", "gain"}
    assert (tmp_path / "run" / "eval-val.json").exists()
    curves = cv2.imread(str(tmp_path / "run" / "curves.png"))  # the picture of the run
    assert curves is not None and curves.shape[0] > 200 and curves.std() > 10

    r = _cli("split", data, "--val", 0.2, "--test", 0.3, "--seed", 1, "--out", tmp_path / "s.json")
    assert r.exit_code == 0 and json.loads((tmp_path / "s.json").read_text())["seed"] == 1

    r = _cli("validate", data, "--test", trusted_tiny, "--steps", 2, "--out", tmp_path / "val", *tiny)
    assert r.exit_code == 0, r.output
    assert "verdict:" in r.stdout.strip().splitlines()[-1]
    assert json.loads((tmp_path / "val" / "eval-test.json").read_text())["split"] == "test"

    r = _cli("train-reference", "nope", "--data", data, "--out", tmp_path / "x")
    assert r.exit_code == 1 and "unknown" in r.output and "Traceback" not in r.output


def test_bf16_autocast_training_on_cpu(data, tmp_path):
    result = train(_config(data, tmp_path / "run", steps=2, amp="bf16", val_every=2))
    assert np.isfinite(result["loss"]) and result["val_psnr"] > 10
    assert load_checkpoint(tmp_path / "run")["state_dict"]["conv_in.weight"].dtype == torch.float32
