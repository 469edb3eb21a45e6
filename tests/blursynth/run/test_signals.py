"""SIGTERM and Ctrl-C stop a run and its workers, in one line, resumably (issue 7, item 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from blursynth.dataset import Manifest, file_sha256

REPO = Path(__file__).resolve().parents[3]
INTERRUPTED = "blursynth: interrupted; re-run the same command to resume"


def command(src, out, workers=2, repeats=1):
    return [sys.executable, "-m", "blursynth", "highspeed", "--src", str(src), "--tau", "3", "--T", "tau",
            "--shard-size", "1", "--repeats", str(repeats), "--workers", str(workers), "--out", str(out), "-q"]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    from blursynth.synthetic import write_sample_clip
    return write_sample_clip(tmp_path_factory.mktemp("clip") / "clip", n_frames=120, size=(480, 270))


def start_and_wait_for_workers(src, out, start_new_session=False, repeats=1):
    """Start a run with two loky workers; return it once both render and a shard is done."""
    proc = subprocess.Popen(command(src, out, repeats=repeats), cwd=REPO, stderr=subprocess.PIPE, text=True,
                            start_new_session=start_new_session)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 90
    while time.time() < deadline:
        workers = [p for p in parent.children(recursive=True) if "loky" in " ".join(_cmdline(p))]
        if len(list(out.glob("shard-*.h5"))) >= 2 and len(workers) >= 2:
            return proc, parent.children(recursive=True)
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the run did not start two workers in time")


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def snapshot(out: Path) -> dict:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in out.iterdir()}


def check_stopped_cleanly(proc, children, out, code):
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == [INTERRUPTED], err
    deadline = time.time() + 5
    while time.time() < deadline and any(alive(c) for c in children):
        time.sleep(0.05)
    assert not [c.pid for c in children if alive(c)], "a worker or resource tracker outlived the run"
    before = snapshot(out)
    time.sleep(1.5)
    assert snapshot(out) == before, "something still writes into --out"
    assert not list(out.glob("*.tmp-*"))
    assert not Manifest.load(out).complete


def test_sigterm_stops_the_workers_and_the_run_resumes_bit_for_bit(tmp_path, long_clip):
    out = tmp_path / "out"
    proc, children = start_and_wait_for_workers(long_clip, out)
    proc.send_signal(signal.SIGTERM)  # to the main process only
    check_stopped_cleanly(proc, children, out, 128 + signal.SIGTERM)
    subprocess.run(command(long_clip, out), check=True, cwd=REPO)
    reference = tmp_path / "reference"
    subprocess.run(command(long_clip, reference, workers=1), check=True, cwd=REPO)
    got, ref = Manifest.load(out), Manifest.load(reference)
    assert got.complete and [(e["file"], e["sha256"]) for e in got.shards] == \
        [(e["file"], e["sha256"]) for e in ref.shards]
    assert all(file_sha256(out / e["file"]) == e["sha256"] for e in got.shards)


def test_ctrl_c_prints_one_line_and_stops_the_workers(tmp_path, long_clip):
    out = tmp_path / "out"
    # Many more shards than the SIGTERM test needs: nothing resumes this run, and on a loaded machine
    # 40 shards could all finish between the poll that sees two workers and the signal.
    proc, children = start_and_wait_for_workers(long_clip, out, start_new_session=True, repeats=8)
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
    check_stopped_cleanly(proc, children, out, 128 + signal.SIGINT)


def test_ctrl_c_during_the_final_write_is_one_line(tmp_path, monkeypatch):
    """KeyboardInterrupt while the manifest is written for the last time."""
    from click.testing import CliRunner

    from blursynth.run import engine
    from blursynth.cli import main
    from tests.helpers import random_frames, write_frames

    clip = write_frames(tmp_path / "clip", random_frames(6))

    def interrupted(manifest, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "_finish", interrupted)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["highspeed", "--src", str(clip), "--tau", "3", "--out", str(out), "-q",
                                       "--workers", "1"])
    assert result.exit_code == 128 + signal.SIGINT
    assert [line for line in result.output.splitlines() if line.strip()] == [INTERRUPTED]
    monkeypatch.undo()
    assert not Manifest.load(out).complete
    assert CliRunner().invoke(main, ["highspeed", "--src", str(clip), "--tau", "3", "--out", str(out), "-q",
                                     "--workers", "1"]).exit_code == 0
    assert Manifest.load(out).complete


def test_processes_started_while_the_pool_spawns_ignore_ctrl_c_from_their_first_instruction():
    # A Ctrl-C that reaches a worker still importing its modules would print that worker's traceback.
    from blursynth.run.signals import spawning_ignores_sigint

    probe = [sys.executable, "-c", "import signal; h = signal.getsignal(signal.SIGINT); "
             "print('ignored' if h == signal.SIG_IGN else h)"]
    before = signal.getsignal(signal.SIGINT)
    with spawning_ignores_sigint(True):
        inside = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    outside = subprocess.run(probe, capture_output=True, text=True, check=True).stdout.strip()
    assert inside == "ignored"  # inherited through exec, kept by Python at start-up
    assert "default_int_handler" in outside
    assert signal.getsignal(signal.SIGINT) is before  # the parent's own handling is back
