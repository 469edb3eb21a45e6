"""``info`` and ``verify``: thin commands over shards.describe / shards.verify."""

from __future__ import annotations

import json

import h5py

from blursynth.dataset import describe
from tests.helpers import assert_one_line_error, random_frames, run_ok, write_frames


def make_dataset(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(12, seed=3))
    out = tmp_path / "out"
    run_ok("highspeed", "--src", clip, "--tau", "3", "--T", "3", "--latent", "2", "--shard-size", "2",
           "--workers", "1", "--quiet", "--out", out)
    return out


def test_info_reports_what_the_files_hold(tmp_path, cli):
    out = make_dataset(tmp_path)
    result = cli("info", out)
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    with h5py.File(out / "shard-00000.h5", "r") as f:
        shapes = {name: list(f[name].shape[1:]) for name in ("blur", "sharp", "latent")}
    sizes = [(out / s["file"]).stat().st_size for s in manifest["shards"]]
    assert got == {
        "kind": "highspeed", "complete": True, "samples": 4, "planned": 4, "shards": 2, "skipped": 0,
        "sample_shape": shapes, "seed": 0, "config": manifest["config"],
        # per frame size and per source: 12 frames, tau = T = 3 -> 4 samples of clip "clip", 2 per shard
        "frame_sizes": {"20x12": 4}, "bytes": sum(sizes),
        "sources": {"clip": {"samples": 4, "frame_sizes": {"20x12": 4}, "bytes": sum(sizes),
                             "tau_T": {"3/3": 4}}},
    }
    assert shapes == {"blur": [1, 12, 20, 3], "sharp": [1, 12, 20, 3], "latent": [1, 2, 12, 20, 3]}
    assert describe(out) == got


def test_verify_finds_a_changed_byte_in_one_line(tmp_path, cli):
    out = make_dataset(tmp_path)
    result = cli("verify", out)
    assert result.exit_code == 0 and result.output.strip() == f"{out}: ok"
    shard = out / "shard-00001.h5"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert_one_line_error(cli("verify", out), "shard-00001.h5", "sha256 mismatch")
    assert_one_line_error(cli("info", tmp_path / "clip"), "not a blursynth dataset")
