"""Training presets (issue 20, item 1): the probe on a CPU by default, the preset's values under the
user's own, the cosine schedule against its formula, and the EMA through a killed-and-resumed run."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import run_cli, train_killed_at
from reference_models import create_model, list_models, task_of
from reference_models.checkpoint import load_checkpoint
from reference_models.dtb import DTBTask
from reference_models.train import LR_FLOOR, TrainConfig, learning_rate, resolve_defaults, train
from tests.helpers.handmade import make_split_tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_split_tiny_dataset(tmp_path_factory.mktemp("presets") / "data")


@pytest.mark.parametrize("name", list_models())
def test_every_model_has_a_probe_smaller_than_its_paper_model(name):
    task = task_of(create_model(name))
    probe, paper = task.preset("probe"), task.preset("paper")
    small = create_model(name, **probe.get("model_args", {}))
    big = create_model(name, **paper.get("model_args", {}))
    assert sum(p.numel() for p in small.parameters()) <= sum(p.numel() for p in big.parameters())
    assert probe["steps"] >= 1 and probe.get("lr_schedule") == "cosine" and 0 < probe["ema"] < 1
    with pytest.raises(ValueError, match="--preset nosuch"):
        task.preset("nosuch")


def test_preset_fills_what_the_user_left_out_and_user_options_win():
    task = DTBTask()
    config = resolve_defaults(TrainConfig(model="dtb", preset="probe", batch=2,
                                          model_args={"blocks": 1}), task)
    assert config.batch == 2  # the user's
    for field in ("steps", "patch", "clip_len", "lr", "lr_schedule", "ema"):
        assert getattr(config, field) == task.probe[field]
    assert config.model_args == {**task.probe["model_args"], "blocks": 1}
    paper = resolve_defaults(TrainConfig(model="dtb"), task)
    assert paper.preset == "paper" and paper.model_args == {}
    assert (paper.batch, paper.patch, paper.lr) == (task.defaults["batch"], task.defaults["patch"],
                                                     task.defaults["lr"])


def test_cosine_schedule_warms_up_then_decays_to_the_floor_at_the_last_step():
    steps, lr = 1000, 3e-4
    config = TrainConfig(steps=steps, lr=lr, lr_schedule="cosine")
    warm = 50  # min(100, steps / 20)
    rates = [learning_rate(config, DTBTask(), s, 10) for s in range(steps)]
    assert rates[0] == pytest.approx(lr / warm) and rates[warm - 1] == pytest.approx(lr)
    u = lambda s: (s - warm) / (steps - warm - 1)  # noqa: E731
    for s in (warm, 300, 700, steps - 1):
        expected = lr * (LR_FLOOR + (1 - LR_FLOOR) * (1 + math.cos(math.pi * u(s))) / 2)
        assert rates[s] == pytest.approx(expected, rel=1e-9)
    assert rates[-1] == pytest.approx(LR_FLOOR * lr)
    assert all(a >= b for a, b in zip(rates[warm:], rates[warm + 1:]))


def test_typed_on_a_cpu_trains_the_probe_and_says_how_to_get_the_papers_model(data, tmp_path, monkeypatch):
    monkeypatch.setattr(DTBTask, "probe", {**DTBTask.probe, "steps": 2, "patch": 24, "clip_len": 3})
    result = run_cli("train-reference", "dtb", "--data", data, "--out", tmp_path / "run", "--device", "cpu",
                     "--workers", 0, "--val-samples", 1, "--val-crop", 24)
    assert result.exit_code == 0, result.output
    note = [line for line in result.output.splitlines() if line.startswith("note: on the CPU")]
    assert len(note) == 1 and "probe preset (2 steps" in note[0] and "--preset paper" in note[0]
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["config"]["preset"] == "probe" and ckpt["step"] == 2
    assert ckpt["model_args"] == DTBTask.probe["model_args"]
    # with --steps the paper preset is trained, and nothing is said
    again = run_cli("train-reference", "dtb", "--data", data, "--out", tmp_path / "paper", "--device", "cpu",
                    "--steps", 1, "--batch", 1, "--patch", 24, "--clip-len", 3, "--workers", 0,
                    "--model-arg", "blocks=1", "--model-arg", "width=8", "--model-arg", "feature_channels=4",
                    "--val-samples", 1, "--val-crop", 24)
    assert again.exit_code == 0 and "note: on the CPU" not in again.output
    assert load_checkpoint(tmp_path / "paper")["config"]["preset"] == "paper"


def _config(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), model="dtb", model_args={"blocks": 1, "width": 8,
                "feature_channels": 4}, steps=8, batch=2, patch=24, clip_len=3, lr=1e-3, workers=0,
                log_every=1, val_every=100, val_samples=0, ckpt_every=4, quiet=True, lr_schedule="cosine",
                ema=0.8)
    return TrainConfig(**{**base, **kw})


def test_ema_weights_ship_and_a_killed_run_resumes_them_bit_for_bit(data, tmp_path, monkeypatch):
    train(_config(data, tmp_path / "straight"))
    straight = load_checkpoint(tmp_path / "straight")
    # model.pt holds the average, checkpoint.pt also the trained weights, and they differ
    shipped = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)
    assert "train_state_dict" not in shipped
    assert any(not torch.equal(straight["state_dict"][k], straight["train_state_dict"][k])
               for k in straight["state_dict"] if straight["state_dict"][k].is_floating_point())
    train_killed_at(lambda: train(_config(data, tmp_path / "killed")), 6, monkeypatch)
    train(_config(data, tmp_path / "killed", resume=True))
    resumed = load_checkpoint(tmp_path / "killed")
    for key in ("state_dict", "train_state_dict"):
        assert all(torch.equal(resumed[key][k], straight[key][k]) for k in straight[key])
    # a cosine run resumed with another step count is refused (its schedule ends at the last step)
    with pytest.raises(Exception, match="--steps"):
        train(_config(data, tmp_path / "killed", resume=True, steps=12))
