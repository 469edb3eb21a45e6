"""What blursynth may delete, lock and read in a dataset folder (issue 7, items 4 and 5)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from blursynth.errors import BlursynthError
from blursynth.dataset import Manifest, file_sha256, is_own_file, is_temporary, verify
from tests.helpers import assert_one_line_error, random_frames, run_cli as cli, write_frames

REPO = Path(__file__).resolve().parents[3]


def one_line_error(result, *words) -> str:
    """:func:`assert_one_line_error`, returning the line."""
    assert_one_line_error(result, *words)
    return result.output.strip()


@pytest.fixture
def clip(tmp_path):
    return write_frames(tmp_path / "clip", random_frames(12, seed=1))


def make(clip, out, *extra):
    return cli("highspeed", "--src", clip, "--tau", "3", "--T", "tau", "--shard-size", "2", "--workers", "1",
               "--out", out, "-q", *extra)


# ------------------------------------------------------------------ ownership
@pytest.mark.parametrize("name, own", [
    ("manifest.json", True), ("shard-00000.h5", True), ("shard-123456.h5", True),
    ("shard-00003.h5.tmp-812", True), ("shard-00003.h5.tmp-812.progress", True), ("manifest.json.tmp-7", True),
    ("shard-important.h5", False), ("shard-0001.h5", False), ("shard-00001.h5.bak", False),
    ("shard-00001.h5.tmp-abc", False), ("shard-00001.h5.tmp-", False), ("notes.tmp-1", False),
    ("manifest.json.bak", False), ("manifest.json.tmp-1.old", False), ("my-shard-00001.h5", False),
    (".blursynth.lock", False),
])
def test_own_file_names_are_exact(name, own):
    assert is_own_file(name) is own
    assert is_temporary(name) is (own and ".tmp-" in name)


USER_FILES = {"shard-important.h5": b"precious", "notes.tmp-1": b"draft", "manifest.json.bak": b"{}",
              "shard-00001.h5.tmp-abc": b"not ours", "README": b"mine"}


def plant(out: Path) -> None:
    for name, data in USER_FILES.items():
        (out / name).write_bytes(data)


def assert_planted(out: Path) -> None:
    for name, data in USER_FILES.items():
        assert (out / name).read_bytes() == data, name


def test_overwrite_deletes_only_files_blursynth_names(tmp_path, clip):
    out = tmp_path / "out"
    assert make(clip, out).exit_code == 0
    plant(out)
    (out / "shard-00007.h5").write_bytes(b"old shard of a bigger run")  # ours by name: may go
    (out / "shard-00001.h5.tmp-99").write_bytes(b"stale")
    result = cli("highspeed", "--src", clip, "--tau", "5", "--out", out, "-q", "--workers", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert_planted(out)
    assert not (out / "shard-00007.h5").exists() and not (out / "shard-00001.h5.tmp-99").exists()
    assert verify(out) == []


def test_resume_removes_only_its_own_temporaries(tmp_path, clip):
    out = tmp_path / "out"
    assert make(clip, out).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["shards"] = manifest["shards"][:1]
    manifest["complete"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    plant(out)
    (out / "shard-00002.h5.tmp-4242").write_bytes(b"left by a killed run")
    (out / "shard-00002.h5.tmp-4242.progress").write_text("1")
    (out / "manifest.json.tmp-4242").write_text("{")
    assert make(clip, out).exit_code == 0
    assert_planted(out)
    assert not [p for p in out.iterdir() if is_temporary(p.name)]
    assert Manifest.load(out).complete and verify(out) == []


def test_symlinked_lock_does_not_touch_its_target(tmp_path, clip):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("do not truncate")
    (out / ".blursynth.lock").symlink_to(victim)
    one_line_error(make(clip, out), ".blursynth.lock", "symbolic link")
    assert victim.read_text() == "do not truncate"
    assert not list(out.glob("shard-*")) and not (out / "manifest.json").exists()
    # a dangling link is no better: nothing is created at its target
    (out / ".blursynth.lock").unlink()
    (out / ".blursynth.lock").symlink_to(tmp_path / "created-by-blursynth")
    one_line_error(make(clip, out), ".blursynth.lock")
    assert not (tmp_path / "created-by-blursynth").exists()


def test_existing_lock_file_is_not_truncated(tmp_path, clip):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".blursynth.lock").write_text("someone's bytes")
    assert make(clip, out).exit_code == 0
    assert (out / ".blursynth.lock").read_text() == "someone's bytes"


def _slow_run(src, out):
    return [sys.executable, "-m", "blursynth", "highspeed", "--src", str(src), "--tau", "3", "--T", "tau",
            "--shard-size", "1", "--workers", "1", "--out", str(out), "-q"]


def test_overwrite_is_refused_while_another_run_holds_the_lock(tmp_path):
    src = write_frames(tmp_path / "big", random_frames(60, h=24, w=32, seed=2))
    other = write_frames(tmp_path / "other", random_frames(12, seed=3))
    out = tmp_path / "out"
    proc = subprocess.Popen(_slow_run(src, out), cwd=REPO)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list(out.glob("shard-*.h5")):
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGSTOP)  # hold the run, and its lock, mid-way
        assert not Manifest.load(out).complete
        before = sorted(p.name for p in out.glob("shard-*.h5"))
        one_line_error(cli("highspeed", "--src", other, "--tau", "5", "--out", out, "-q", "--workers", "1",
                           "--overwrite"), "--out", "another blursynth run")
        assert sorted(p.name for p in out.glob("shard-*.h5")) == before
        one_line_error(cli("highspeed", "--src", src, "--tau", "3", "--T", "tau", "--shard-size", "1",
                           "--out", out, "-q", "--workers", "1"), "another blursynth run")
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert proc.wait(timeout=120) == 0
    manifest = Manifest.load(out)
    assert manifest.complete and len(manifest.shards) == 20
    assert verify(out) == []
    assert all(file_sha256(out / e["file"]) == e["sha256"] for e in manifest.shards)


# ---------------------------------------------------------------- confinement
HOSTILE_NAMES = ["../../etc/passwd", "/etc/passwd", "../outside/shard-00000.h5", "sub/shard-00000.h5",
                 "shard-00000.h5/../../x", "shard-00000.h5\x00", "shard-important.h5", "", None, 7,
                 ["shard-00000.h5"]]


@pytest.fixture
def dataset(tmp_path, clip):
    out = tmp_path / "data"
    assert make(clip, out).exit_code == 0
    return out


def poison(dataset: Path, name) -> None:
    """Point the first shard entry at ``name``, with the sha256 of the file it names (if any)."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    target = dataset / name if isinstance(name, str) and name and "\x00" not in name else None
    if target is not None and target.is_file():
        manifest["shards"][0]["sha256"] = file_sha256(target)
    manifest["shards"][0]["file"] = name
    (dataset / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_manifest_reader_refuses_names_outside_the_dataset(dataset, name):
    poison(dataset, name)
    with pytest.raises(BlursynthError, match="not a plain shard-NNNNN.h5 name"):
        Manifest.load(dataset)


def test_every_reader_refuses_a_manifest_pointing_outside(tmp_path, dataset):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.h5").write_bytes(b"a file outside the dataset")
    poison(dataset, "../outside/secret.h5")
    words = ("manifest.json", "../outside/secret.h5", "not a plain")
    one_line_error(cli("verify", dataset), *words)
    one_line_error(cli("info", dataset), *words)
    one_line_error(cli("preview", dataset, "--out", tmp_path / "p.png"), *words)
    one_line_error(cli("split", dataset, "--out", tmp_path / "split.json"), *words)
    assert not (tmp_path / "p.png").exists()
    from reference_models.data import ShardIndex  # what training and evaluation read through
    with pytest.raises(BlursynthError, match="not a plain"):
        ShardIndex(dataset)


def test_verify_no_longer_hashes_etc_passwd(dataset):
    if not Path("/etc/passwd").is_file():
        pytest.skip("no /etc/passwd here")
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["shards"][0]["file"] = "../" * 20 + "etc/passwd"
    manifest["shards"][0]["sha256"] = file_sha256(Path("/etc/passwd"))
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    one_line_error(cli("verify", dataset), "etc/passwd", "not a plain")


@pytest.mark.parametrize("edit, words", [
    (lambda m: m.pop("shards"), ["no 'shards'"]),
    (lambda m: m.update(shards="x"), ["'shards'"]),
    (lambda m: m.update(n_samples=-1), ["'n_samples'"]),
    (lambda m: m.update(shard_size=True), ["'shard_size'"]),
    (lambda m: m["shards"][0].update(samples="3"), ["shard-00000.h5", "'samples'"]),
    (lambda m: m["shards"][0].update(sha256="../x"), ["shard-00000.h5", "'sha256'"]),
    (lambda m: m["shards"].__setitem__(0, "shard-00000.h5"), ["not an object"]),
    (lambda m: m.update(format_version=99), ["format_version 99", "upgrade"]),
])
def test_malformed_manifest_fields_give_one_line(tmp_path, dataset, edit, words):
    manifest = json.loads((dataset / "manifest.json").read_text())
    edit(manifest)
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    one_line_error(cli("info", dataset), *words)
    one_line_error(cli("verify", dataset), *words)


def test_manifest_that_is_not_utf8_or_not_an_object(dataset):
    (dataset / "manifest.json").write_bytes(b'{"format": "\xff\xfe"}')
    one_line_error(cli("info", dataset), "manifest.json", "unreadable")
    (dataset / "manifest.json").write_text("[1, 2]")
    one_line_error(cli("info", dataset), "manifest.json", "format")
