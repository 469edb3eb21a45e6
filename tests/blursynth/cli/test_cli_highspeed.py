"""The highspeed command end to end: bad input, skip-bad, overwrite, recipes, kill+resume, Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from blursynth.dataset import Manifest, file_sha256, iter_samples
from tests.helpers import assert_one_line_error, no_partial_output, random_frames, write_frames

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def clip(tmp_path):
    return write_frames(tmp_path / "clip", random_frames(20, seed=1))


def test_bad_inputs_each_give_one_line(tmp_path, clip, cli):
    out = tmp_path / "out"
    # even tau, T < tau, K not fitting tau
    assert_one_line_error(cli("highspeed", "--src", clip, "--tau", "8", "--out", out), "--tau 8")
    assert_one_line_error(cli("highspeed", "--src", clip, "--tau", "7", "--T", "5", "--out", out), "--T 5")
    assert_one_line_error(cli("highspeed", "--src", clip, "--tau", "7", "--latent", "5", "--out", out), "--latent 5")
    # empty src folder, missing src
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("highspeed", "--src", tmp_path / "empty", "--out", out), "no frames")
    # one --src missing beside one that exists: a typo, not a first try (none existing: the sample clip)
    assert_one_line_error(cli("highspeed", "--src", clip, "--src", tmp_path / "nope", "--out", out), "nope")
    # clip too short for one exposure
    short = write_frames(tmp_path / "short", random_frames(4))
    assert_one_line_error(cli("highspeed", "--src", short, "--tau", "7", "--out", out), "short", "too short")
    # frames of different sizes
    mixed = write_frames(tmp_path / "mixed", random_frames(8) + random_frames(1, h=13, seed=4))
    assert_one_line_error(cli("highspeed", "--src", mixed, "--tau", "3", "--out", out), "f8.png", "differs")
    # a file that is not an image at all (plan time)
    garbage = write_frames(tmp_path / "garbage", random_frames(8))
    (garbage / "f3.png").write_bytes(b"not an image")
    assert_one_line_error(cli("highspeed", "--src", garbage, "--tau", "3", "--out", out), "f3.png")
    # unwritable --out (a path below a regular file)
    (tmp_path / "file").write_text("x")
    assert_one_line_error(cli("highspeed", "--src", clip, "--tau", "3", "--out", tmp_path / "file" / "o"), "--out")
    assert no_partial_output(out)


def test_truncated_frame_found_while_rendering(tmp_path, cli):
    clip = write_frames(tmp_path / "clip", random_frames(9, h=40, w=60))
    data = (clip / "f4.png").read_bytes()
    (clip / "f4.png").write_bytes(data[: len(data) // 2])  # header intact, pixels cut
    out = tmp_path / "out"
    result = cli("highspeed", "--src", clip, "--tau", "3", "--T", "tau", "--out", out, "--workers", "1", "-q")
    assert_one_line_error(result, "f4.png", "corrupt")
    assert not list(out.glob("*.tmp-*"))
    # shards already finished are valid and kept; the shard with the bad frame is not there
    assert not (out / "shard-00000.h5").exists() or Manifest.load(out).complete is False


def test_skip_bad_lists_clips_with_reasons(tmp_path, cli):
    src = tmp_path / "src"
    good = write_frames(src / "good", random_frames(9, seed=2))
    write_frames(src / "short", random_frames(2))
    broken = write_frames(src / "broken", random_frames(9, seed=3))
    (broken / "f2.png").write_bytes(b"junk")
    truncated = write_frames(src / "truncated", random_frames(9, h=40, w=60, seed=5))
    data = (truncated / "f1.png").read_bytes()
    (truncated / "f1.png").write_bytes(data[:60])
    out = tmp_path / "out"
    result = cli("highspeed", "--src", src, "--tau", "3", "--T", "tau", "--resize", "20x12", "--out", out,
                 "--skip-bad", "-q", "--workers", "1")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    reasons = {s["source"]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"short", "broken", "truncated"}
    assert "too short" in reasons["short"] and "f2.png" in reasons["broken"] and "f1.png" in reasons["truncated"]
    sources = {s.meta["source"] for s in iter_samples(out)}
    assert sources == {"good"} and good.exists()


def test_refuses_different_config_unless_overwrite(tmp_path, clip, cli):
    out = tmp_path / "out"
    assert cli("highspeed", "--src", clip, "--tau", "3", "--out", out, "-q").exit_code == 0
    result = cli("highspeed", "--src", clip, "--tau", "5", "--out", out, "-q")
    assert_one_line_error(result, "--out", "different config")
    (out / "notes.txt").write_text("mine")
    assert cli("highspeed", "--src", clip, "--tau", "5", "--out", out, "-q", "--overwrite").exit_code == 0
    assert (out / "notes.txt").read_text() == "mine"  # a user's file is never deleted
    assert {s.meta["tau"] for s in iter_samples(out)} == {5}
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("x")
    assert_one_line_error(cli("highspeed", "--src", clip, "--out", other, "-q"), "not empty")


def test_recipe_fills_defaults_and_flags_win(tmp_path, clip, cli):
    recipe = tmp_path / "r.toml"
    recipe.write_text('tau = [5]\nT = "tau"\nseq-len = 2\n\n[recipe]\npaper = "test"\n')
    out = tmp_path / "out"
    assert cli("highspeed", "--recipe", recipe, "--src", clip, "--out", out, "-q").exit_code == 0
    config = Manifest.load(out).config
    assert config["tau"] == [5] and config["T"] == "tau" and config["seq_len"] == 2
    out2 = tmp_path / "out2"
    assert cli("highspeed", "--recipe", recipe, "--src", clip, "--out", out2, "--tau", "3", "-q").exit_code == 0
    assert Manifest.load(out2).config["tau"] == [3]
    bad = tmp_path / "bad.toml"
    bad.write_text("colour = 3\n")
    result = cli("highspeed", "--recipe", bad, "--src", clip, "--out", tmp_path / "o3")
    assert result.exit_code != 0 and "colour" in result.output


@pytest.mark.parametrize("name", ["kim2017_dtb.toml", "nah2017_gopro.toml", "argaw2021_gopro7.toml"])
def test_shipped_recipes_load(name, tmp_path, cli):
    clip = write_frames(tmp_path / "clip", random_frames(400, h=8, w=8))
    result = cli("highspeed", "--recipe", REPO / "recipes" / name, "--src", clip, "--out", tmp_path / "o",
                 "--resize", "8x8", "-q", "--workers", "1")
    assert result.exit_code == 0, result.output


def _cmd(src, out):
    return [sys.executable, "-m", "blursynth", "highspeed", "--src", str(src), "--tau", "3", "--T", "tau",
            "--shard-size", "1", "--workers", "1", "--out", str(out), "-q"]


def test_sigkill_and_resume_gives_identical_shards(tmp_path):
    from blursynth.synthetic import write_sample_clip
    src = write_sample_clip(tmp_path / "clip", n_frames=150, size=(480, 270))
    reference = tmp_path / "reference"
    subprocess.run(_cmd(src, reference), check=True, cwd=REPO)
    out = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(src, out), cwd=REPO, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob("shard-*.h5"))) < 5:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not Manifest.load(out).complete  # killed mid-way
    finished_before = len(list(out.glob("shard-*.h5")))
    assert 5 <= finished_before < 50
    subprocess.run(_cmd(src, out), check=True, cwd=REPO)
    ref, got = Manifest.load(reference), Manifest.load(out)
    assert got.complete and len(got.shards) == len(ref.shards) == 50
    assert [(e["file"], e["sha256"]) for e in got.shards] == [(e["file"], e["sha256"]) for e in ref.shards]
    assert all(file_sha256(out / e["file"]) == e["sha256"] for e in got.shards)
    assert not list(out.glob("*.tmp-*"))


def test_dask_backend_on_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    src = tmp_path / "src"
    for i in range(2):
        write_frames(src / f"c{i}", random_frames(15, seed=20 + i))
    subprocess.run(_cmd(src, tmp_path / "loky"), check=True, cwd=REPO)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        result = subprocess.run(_cmd(src, tmp_path / "dask")[:-3] + [
            "--backend", "dask", "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "dask"), "-q"],
            cwd=REPO, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        # The shards were rendered as tasks on the cluster's workers.
        prefixes = {name for name in cluster.scheduler.task_prefixes}
    assert any("render_shard" in p for p in prefixes), prefixes
    a, b = Manifest.load(tmp_path / "loky"), Manifest.load(tmp_path / "dask")
    assert [e["sha256"] for e in a.shards] == [e["sha256"] for e in b.shards]
    samples = list(iter_samples(tmp_path / "dask"))
    assert len(samples) == 10 and np.all([s.arrays["blur"].shape == (1, 12, 20, 3) for s in samples])


def test_dask_unreachable_scheduler_is_one_line(tmp_path, clip, cli):
    result = cli("highspeed", "--src", clip, "--out", tmp_path / "o", "--backend", "dask",
                 "--scheduler", "tcp://127.0.0.1:1", "-q")
    assert_one_line_error(result, "--scheduler")


def test_skip_bad_fixup_survives_a_kill(tmp_path, cli):
    """Killed after a bad clip was found but before the shards holding its other
    samples were made again: the re-run still drops the clip everywhere."""
    import shutil
    src = tmp_path / "src"
    write_frames(src / "a", random_frames(9, seed=50))
    b = write_frames(src / "b", random_frames(30, h=40, w=60, seed=51)[:9] + random_frames(21, h=40, w=60, seed=52))
    args = ("highspeed", "--src", src, "--tau", "3", "--T", "tau", "--shard-size", "4", "--resize", "20x12",
            "--workers", "1", "--skip-bad", "-q", "--out", tmp_path / "out")
    out = tmp_path / "out"
    assert cli(*args).exit_code == 0  # clean: a (3 samples) + b (10 samples), shard 0 holds a0-a2 and b0
    clean_shard0 = tmp_path / "shard0-clean.h5"
    shutil.copy(out / "shard-00000.h5", clean_shard0)
    data = (b / "f20.png").read_bytes()
    (b / "f20.png").write_bytes(data[:70])  # corrupt a frame of b's sample 6 (shard 2)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"] = [s for s in manifest["shards"] if s["index"] != 2]
    (out / "shard-00002.h5").unlink()
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert cli(*args).exit_code == 0
    assert {s.meta["source"] for s in iter_samples(out)} == {"a"}
    # Now the state a kill leaves before the fix-up: shard 0 still holds b's sample,
    # the skip record is there, every shard file exists.
    shutil.copy(clean_shard0, out / "shard-00000.h5")
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["shards"]:
        if entry["index"] == 0:
            entry.pop("excluded", None)
            entry["sha256"] = file_sha256(out / "shard-00000.h5")
            entry["samples"] = 4
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert "b" in {s.meta["source"] for s in iter_samples(out)}
    assert cli(*args).exit_code == 0
    assert {s.meta["source"] for s in iter_samples(out)} == {"a"}
    final = Manifest.load(out)
    assert final.complete and [s["source"] for s in final.skipped] == ["b"] and "f20.png" in final.skipped[0]["reason"]
