"""Worker processes die with the main process (issue 19, item 6): a real ``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.helpers import random_frames, write_frames

REPO = Path(__file__).resolve().parents[3]
# The promise: no worker outlives a killed main process by more than this (seconds).
OUTLIVE_S = 2.0


def _worker_pids(out: Path) -> set[int]:
    """Pids of the processes that have written a temporary shard or progress file in ``out``."""
    pids = set()
    for path in out.glob("shard-*.h5.tmp-*"):
        digits = path.name.split(".tmp-", 1)[1].split(".", 1)[0]
        if digits.isdigit():
            pids.add(int(digits))
    return pids


def test_kill_9_of_the_main_process_takes_its_workers_within_2_s(tmp_path):
    """Two loky workers, each busy with or waiting for shards; ``kill -9`` of the
    command; every process it started is gone within 2 s (before the fix, idle
    workers waited out loky's 300 s timeout)."""
    clip = write_frames(tmp_path / "clip", random_frames(120, h=48, w=64, seed=3))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "blursynth", "highspeed", "--src", str(clip), "--tau", "3", "--T", "tau",
           "--shard-size", "1", "--workers", "2", "--out", str(out), "-q"]
    # a session of its own: the kill below reaches this command only, as a kill -9 from a shell would
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    main, family = psutil.Process(proc.pid), []
    try:
        deadline, seen = time.monotonic() + 60, set()
        # both workers past their start-up: each has had a shard of its own under a temporary
        # name (a shard of one sample lives there for milliseconds, so the two need not overlap)
        while len(seen) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before both workers started"
            seen |= _worker_pids(out)
            time.sleep(0.005)
        family = main.children(recursive=True)
        assert seen <= {p.pid for p in family}  # the shard writers are the command's children
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait()
        _, alive = psutil.wait_procs(family, timeout=OUTLIVE_S)
        took = time.monotonic() - killed
        assert not alive, f"{[p.pid for p in alive]} outlived the main process by more than {OUTLIVE_S} s"
        assert took <= OUTLIVE_S
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in family:  # test hygiene, should the promise be broken
            try:
                p.kill()
            except psutil.Error:
                pass


def test_local_workers_work_in_the_callers_current_folder(tmp_path, monkeypatch):
    """loky keeps its pool between calls; a caller that changed folder since gets workers in
    the new folder, so relative paths name the same files in the workers as in the caller."""
    import joblib

    from blursynth.run.pool import local_workers

    seen = {}
    for name in ("a", "b", "a"):
        (tmp_path / name).mkdir(exist_ok=True)
        monkeypatch.chdir(tmp_path / name)
        with local_workers():
            seen[name] = set(joblib.Parallel(n_jobs=2)(joblib.delayed(os.getcwd)() for _ in range(4)))
        assert seen[name] == {str(tmp_path / name)}
