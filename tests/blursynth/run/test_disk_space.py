"""A disk too small, or one that fills up mid-run (issue 7, item 8)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest

from blursynth import budget
from blursynth.dataset import Manifest, file_sha256
from tests.helpers import assert_one_line_error, random_frames, run_cli, write_frames

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def clip(tmp_path):
    return write_frames(tmp_path / "clip", random_frames(40, h=96, w=128, seed=5))


def highspeed(clip, out, *extra):
    return run_cli("highspeed", "--src", clip, "--tau", "3", "--T", "tau", "--shard-size", "2", "--out", out,
                   "-q", *extra)


def dataset_bytes(n_samples: int, h: int, w: int) -> int:
    """The test's own estimate: blur + sharp, uint8 RGB."""
    return n_samples * 2 * h * w * 3


def test_estimate_is_checked_before_anything_is_written(tmp_path, clip, monkeypatch):
    out = tmp_path / "out"
    needed = dataset_bytes((40 - 3) // 3 + 1, 96, 128)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9, budget.DISK_MARGIN + needed // 2))
    assert_one_line_error(highspeed(clip, out, "--workers", "1"), f"--out {out}", "disk space", "KB", "free")
    assert not out.exists()
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9, budget.DISK_MARGIN + 2 * needed))
    assert highspeed(clip, out, "--workers", "1").exit_code == 0


def test_panorama_estimate_names_the_sample_count(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 10**6))
    out = tmp_path / "out"
    result = run_cli("panorama", "--n", "5000", "--size", "64x64", "--out", out, "-q")
    assert_one_line_error(result, f"--out {out}", "5,000 samples", "disk space")
    assert not out.exists()


def test_finished_shards_count_as_written_on_resume(tmp_path, clip, monkeypatch):
    out = tmp_path / "out"
    assert highspeed(clip, out, "--workers", "1").exit_code == 0
    on_disk = sum(p.stat().st_size for p in out.glob("shard-*.h5"))
    # as much free space as the margin: a fresh run would be refused, a resume of a complete one is not
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9, budget.DISK_MARGIN))
    assert on_disk > 0 and highspeed(clip, out, "--workers", "1").exit_code == 0
    assert_one_line_error(highspeed(clip, tmp_path / "fresh", "--workers", "1"), "disk space")


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB file system (tmpfs; needs root), unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_small_disk_refuses_at_once(small_disk, clip):
    out = small_disk / "out"
    result = run_cli("highspeed", "--src", clip, "--tau", "3", "--T", "tau", "--repeats", "3", "--out", out,
                     "-q", "--workers", "1")
    assert_one_line_error(result, f"--out {out}", "disk space")
    assert not out.exists()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_disk_full_mid_run_is_one_line_and_resumable(tmp_path, small_disk, clip, monkeypatch, workers):
    """The estimate passes (another writer fills the disk meanwhile, simulated by
    skipping the check), the disk fills up while shards are written."""
    monkeypatch.setattr(budget, "check_disk", lambda *a, **k: None)
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * (free - 700 * 1024))  # room for a few of the 7 shards (~150 KB each)
    out = small_disk / "out"
    result = highspeed(clip, out, "--workers", workers)
    assert_one_line_error(result, f"--out {out}", "disk is full", "re-run the same command")
    manifest = Manifest.load(out)
    # One worker writes shards one after another, so some finish before the disk fills; two workers
    # fill it together, and both may fail before either finishes (seen under load).
    assert not manifest.complete and (0 if workers == "2" else 1) <= len(manifest.shards) < 7
    assert not list(out.glob("*.tmp-*"))
    filler.unlink()
    assert highspeed(clip, out, "--workers", workers).exit_code == 0
    reference = tmp_path / "reference"
    assert highspeed(clip, reference, "--workers", "1").exit_code == 0
    got, ref = Manifest.load(out), Manifest.load(reference)
    assert got.complete and [e["sha256"] for e in got.shards] == [e["sha256"] for e in ref.shards]
    assert all(file_sha256(out / e["file"]) == e["sha256"] for e in got.shards)
