"""The weights that ship (issue 20, item 6): what each folder holds, ``deblur --model`` and its
default choice, and ``eval-reference --weights``, checked against the model run by hand."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import random_frames, run_cli, run_ok, write_frames
from reference_models import create_model, task_of
from reference_models.data import ShardIndex, to_float
from reference_models.shipped import WEIGHTS_ROOT, shipped_models
from tests.helpers.oracles import as_tensor, assert_within_one_lsb, dtb_by_its_recurrence, read_png, to8
from tests.helpers.handmade import make_tiny_dataset

MODELS = ("dtb", "blur2video", "fsta")


def shipped(model: str) -> torch.nn.Module:
    ckpt = torch.load(WEIGHTS_ROOT / model / "model.pt", map_location="cpu", weights_only=True)
    net = create_model(ckpt["model"], **ckpt["model_args"])
    net.load_state_dict(ckpt["state_dict"])
    return net.eval()


def test_every_reference_model_ships_weights():
    assert set(shipped_models()) == set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_a_shipped_folder_holds_small_weights_its_recipe_and_a_held_out_gain(model):
    folder = WEIGHTS_ROOT / model
    assert (folder / "model.pt").stat().st_size < 8 * 2 ** 20  # a few MB
    ckpt = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    assert "optimizer" not in ckpt and ckpt["model"] == model
    assert ckpt["config"]["preset"] == "probe"
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    recipe = tomllib.loads((folder / "dataset.toml").read_text())
    assert recipe["seq-len"] == (8 if task_of(shipped(model)).learns_from == "video" else 1)
    report = json.loads((folder / "eval.json").read_text())
    # scored on the held-out interior panorama, never trained on
    assert {s["source"] for s in report["per_sample"]} == {"interior.hdr"}
    gains = [s["psnr_output"] - s["psnr_input"] for s in report["per_sample"]]
    assert report["psnr"]["gain"] >= 0.5
    assert np.mean(gains) == pytest.approx(report["psnr"]["gain"], abs=0.05)
    steps = [json.loads(line)["step"] for line in (folder / "log.jsonl").read_text().splitlines()]
    assert steps[-1] == ckpt["step"] == json.loads((folder / "config.json").read_text())["steps"]
    assert (folder / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_deblur_model_dtb_runs_the_shipped_weights_online(tmp_path):
    frames = random_frames(4, 20, 24, seed=3)
    src = write_frames(tmp_path / "in", frames)
    run_ok("deblur", src, "--model", "dtb", "--out", tmp_path / "out", "-q")
    expected = to8(dtb_by_its_recurrence(shipped("dtb"), as_tensor(frames)))
    for i in range(4):
        assert_within_one_lsb(read_png(tmp_path / "out" / f"f{i}.png"), expected[i])


@pytest.mark.parametrize("what,kind", [("folder", "video"), ("image", "image")])
def test_deblur_without_run_or_model_picks_the_shipped_model_that_fits(tmp_path, what, kind):
    frames = random_frames(3, 20, 24, seed=4)
    src = write_frames(tmp_path / "in", frames)
    if what == "image":
        src = src / "f0.png"
    result = run_ok("deblur", src, "--out", tmp_path / "out")
    record = json.loads((tmp_path / "out" / "deblur.json").read_text())
    is_video = task_of(shipped(record["model"])).inference != "image"
    assert is_video == (kind == "video")
    assert f"shipped {record['model']} weights" in result.output


def test_deblur_unknown_shipped_model_is_one_line(tmp_path):
    src = write_frames(tmp_path / "in", random_frames(2, 20, 24))
    result = run_cli("deblur", src, "--model", "nosuch", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "--model nosuch: no shipped weights" in result.output
    assert not (tmp_path / "out").exists()


@torch.no_grad()
def test_eval_reference_weights_scores_the_shipped_model(tmp_path, monkeypatch):
    data = make_tiny_dataset(tmp_path / "lat", n_sources=2, per_source=1, seq_len=1, latent=3)
    monkeypatch.chdir(tmp_path)
    run_ok("eval-reference", "--weights", "blur2video", "--data", data, "-q")
    report = json.loads((tmp_path / "eval-blur2video-all.json").read_text())
    model, index = shipped("blur2video"), ShardIndex(data)
    psnrs = []
    for ref in index.refs:  # the middle of the latent frames is what a 1-frame blur2video predicts
        ds = model.task.dataset(index, [ref], model=model, clip_len=None, patch=None, augment=False,
                                flip=False, seed=0)
        item = ds[0]
        out = to8(model(to_float(item["blur"])[None]).clamp(0, 1)[0, -1]).astype(np.float64)
        target = item["latent"][item["latent"].shape[0] // 2].permute(1, 2, 0).numpy().astype(np.float64)
        psnrs.append(10 * np.log10(255.0 ** 2 / np.mean((out - target) ** 2)))
    assert report["split"] == "all" and report["n_samples"] == len(index.refs)
    assert report["psnr"]["output"] == pytest.approx(np.mean(psnrs), abs=1e-3)


def test_eval_reference_needs_a_run_or_weights(tmp_path):
    data = make_tiny_dataset(tmp_path / "lat", n_sources=1, per_source=1, seq_len=1, latent=3)
    result = run_cli("eval-reference", "--data", data)
    assert result.exit_code == 1 and "give a RUN folder or --weights MODEL" in result.output
