"""The advertised commands as a new user types them, in an empty folder; mixed frame sizes;
one-sided --resize; --size WxH; the frame rate of videos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from blursynth.run.engine import RunOptions
from blursynth.highspeed import HighspeedConfig, synthesize
from blursynth.dataset import Manifest, iter_samples, verify
from blursynth.synthetic import synthetic_frames
from tests.helpers import random_frames, write_frames, write_video
from tests.helpers.oracles import assert_blur_close, eq1_oracle as oracle


def shard_sizes(out: Path) -> list[tuple[int, int]]:
    """(W, H) of the blur frames in each shard, read with h5py directly."""
    sizes = []
    for entry in json.loads((out / "manifest.json").read_text())["shards"]:
        with h5py.File(out / entry["file"], "r") as f:
            sizes.append((f["blur"].shape[3], f["blur"].shape[2]))
    return sizes


def test_highspeed_as_typed_in_an_empty_folder(tmp_path, monkeypatch, cli):
    """`blursynth highspeed --tau 7,9,11 --src gopro/`, exactly: no gopro/ here, so the
    built-in clip is used, announced at the start and the end, into ./highspeed-out."""
    monkeypatch.chdir(tmp_path)
    result = cli("highspeed", "--tau", "7,9,11", "--src", "gopro/")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("blursynth:")]
    assert "blursynth: writing to highspeed-out/ (the default; pass --out DIR to choose)" in lines[:2]
    notes = [line for line in lines if "gopro/ does not exist" in line and "built-in 240 fps sample clip" in line]
    assert len(notes) == 2 and lines.index(notes[0]) < 2 and lines[-1] == notes[1]  # at the start and the end
    assert "-> highspeed-out/" in result.output.splitlines()[-1]
    out = tmp_path / "highspeed-out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["highspeed-out"]
    manifest = Manifest.load(out)
    assert manifest.complete and verify(out) == []
    assert manifest.config["src_fallback"]["missing"] == ["gopro/"]
    # The samples are Eq. 1 over the built-in clip, recomputed here from its generator.
    frames = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in synthetic_frames(96, (320, 180), 0)]
    samples = list(iter_samples(out))
    assert len(samples) == manifest.n_samples > 0
    for sample in samples:
        tau, T, start = int(sample.meta["tau"]), int(sample.meta["T"]), int(sample.meta["start"])
        assert tau in (7, 9, 11) and tau <= T <= 2 * tau - 1 and float(sample.meta["fps"]) == 240.0
        blur, sharp, _ = oracle(frames, start, tau, T, 1)
        assert_blur_close(sample.arrays["blur"], blur)
        np.testing.assert_array_equal(sample.arrays["sharp"], sharp)

    # Re-running resumes there; a different config there is refused, pointing at --out.
    again = cli("highspeed", "--tau", "7,9,11", "--src", "gopro/")
    assert again.exit_code == 0 and "resuming: 1 of 1 shards done" in again.output
    other = cli("highspeed", "--tau", "7", "--src", "gopro/")
    assert other.exit_code == 1 and "different config" in other.output and "--out" in other.output
    # Some --src missing beside one that exists is a typo: an error naming it.
    write_frames(tmp_path / "clip", random_frames(12))
    typo = cli("highspeed", "--src", "clip", "--src", "gopr/", "--out", "x")
    assert typo.exit_code == 1 and "--src gopr/" in typo.output and not (tmp_path / "x").exists()


def test_panorama_as_typed_in_an_empty_folder(tmp_path, monkeypatch, cli):
    """`blursynth panorama --n N` on the built-in panoramas into ./panorama-out (a small N and
    size here; the other options at their defaults)."""
    monkeypatch.chdir(tmp_path)
    result = cli("panorama", "--n", 3, "--size", "40x24")
    assert result.exit_code == 0, result.output
    assert "blursynth: writing to panorama-out/ (the default; pass --out DIR to choose)" in result.output
    assert "-> panorama-out/" in result.output.splitlines()[-1]
    assert "--size is now WxH" in result.output  # 40x24 is not square: the order matters
    out = tmp_path / "panorama-out"
    samples = list(iter_samples(out))
    assert len(samples) == 3 and verify(out) == []
    assert samples[0].arrays["blur"].shape == (1, 24, 40, 3)  # W=40, H=24
    assert samples[0].arrays["latent"].shape == (1, 3, 24, 40, 3)  # default --latent 3
    square = cli("panorama", "--n", 2, "--size", "24x24", "--out", "sq")
    assert square.exit_code == 0 and "WxH" not in square.output


def test_mixed_frame_sizes_go_to_shards_of_one_size(tmp_path):
    a = random_frames(12, h=12, w=20, seed=1)
    b = random_frames(9, h=16, w=16, seed=2)
    c = random_frames(12, h=12, w=20, seed=3)
    for name, frames in (("a", a), ("b", b), ("c", c)):
        write_frames(tmp_path / "src" / name, frames)
    options = RunOptions(out=tmp_path / "out", workers=2, shard_size=3, quiet=True)
    manifest = synthesize(HighspeedConfig(src=(str(tmp_path / "src"),), tau=(3,), T="tau"), options)
    # 12 (9) frames / T 3 -> 4 (3) samples per clip; a and c (20x12) first, then b (16x16):
    # shards of 3, 3, 2 samples of 20x12 (a new shard where the size changes), then 3 of 16x16.
    assert manifest.n_samples == 11 and manifest.shard_starts == [0, 3, 6, 8]
    assert shard_sizes(tmp_path / "out") == [(20, 12)] * 3 + [(16, 16)]
    assert [e["samples"] for e in manifest.shards] == [3, 3, 2, 3]
    assert verify(tmp_path / "out") == []
    samples = list(iter_samples(tmp_path / "out"))
    expected = [("a", a, s) for s in range(4)] + [("c", c, s) for s in range(4)] + [("b", b, s) for s in range(3)]
    for i, (sample, (name, frames, s)) in enumerate(zip(samples, expected)):
        assert int(sample.meta["index"]) == i and sample.meta["source"] == name
        blur, sharp, _ = oracle(frames, 3 * s, 3, 3, 1)
        assert_blur_close(sample.arrays["blur"], blur)
        np.testing.assert_array_equal(sample.arrays["sharp"], sharp)
    # Resume with the same layout keeps every shard.
    again = synthesize(HighspeedConfig(src=(str(tmp_path / "src"),), tau=(3,), T="tau"), options)
    assert [e["sha256"] for e in again.shards] == [e["sha256"] for e in manifest.shards]


def test_one_sided_resize_keeps_the_aspect_ratio(tmp_path, cli):
    frame_a = random_frames(1, h=20, w=40, seed=4)[0]
    frame_b = random_frames(1, h=30, w=30, seed=5)[0]
    write_frames(tmp_path / "src" / "wide", [frame_a] * 3)
    write_frames(tmp_path / "src" / "square", [frame_b] * 3)
    result = cli("highspeed", "--src", tmp_path / "src", "--tau", 3, "--T", "tau", "--resize", "10x",
                 "--out", tmp_path / "w", "-q")
    assert result.exit_code == 0, result.output
    assert "aspect" not in result.output
    assert sorted(shard_sizes(tmp_path / "w")) == [(10, 5), (10, 10)]
    result = cli("highspeed", "--src", tmp_path / "src", "--tau", 3, "--T", "tau", "--resize", "x15",
                 "--out", tmp_path / "h", "-q")
    assert sorted(shard_sizes(tmp_path / "h")) == [(15, 15), (30, 15)]
    # A static scene: the resized sharp frame is the linear-light area mean of 2x2 blocks.
    sample = next(s for s in iter_samples(tmp_path / "h") if s.meta["source"] == "square")
    lin = (frame_b / 255.0) ** 2.2
    expected = 255.0 * lin.reshape(15, 2, 15, 2, 3).mean((1, 3)) ** (1 / 2.2)
    assert np.abs(sample.arrays["sharp"][0] - expected).max() <= 1.0
    # A WxH that changes a clip's aspect ratio says so, once, in one line.
    result = cli("highspeed", "--src", tmp_path / "src", "--tau", 3, "--T", "tau", "--resize", "20x10",
                 "--out", tmp_path / "f", "-q")
    notes = [line for line in result.output.splitlines() if "aspect ratio" in line]
    assert result.exit_code == 0 and len(notes) == 1 and "1 of 2 clips" in notes[0] and "square" in notes[0]
    assert shard_sizes(tmp_path / "f") == [(20, 10)]
    bad = cli("highspeed", "--src", tmp_path / "src", "--resize", "x", "--out", tmp_path / "g")
    assert bad.exit_code != 0 and "--resize" in bad.output and not (tmp_path / "g").exists()


@pytest.mark.parametrize("fps, warned", [(24.0, True), (240.0, False)])
def test_video_records_its_own_frame_rate(tmp_path, cli, fps, warned):
    video = write_video(tmp_path / "v.avi", random_frames(9, seed=7), fps=fps)
    result = cli("highspeed", "--src", video, "--tau", 3, "--T", "tau", "--out", tmp_path / "o", "-q")
    assert result.exit_code == 0, result.output
    assert {float(s.meta["fps"]) for s in iter_samples(tmp_path / "o")} == {fps}
    lines = [line for line in result.output.splitlines() if "below 120 fps" in line]
    assert len(lines) == (1 if warned else 0)
    # --fps overrides the container's rate (and is what gets recorded)
    result = cli("highspeed", "--src", video, "--tau", 3, "--T", "tau", "--fps", 1000, "--out", tmp_path / "p",
                 "-q")
    assert {float(s.meta["fps"]) for s in iter_samples(tmp_path / "p")} == {1000.0}
    assert "below 120 fps" not in result.output
