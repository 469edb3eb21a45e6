"""--backend dask as a cluster on other machines behaves (issue 19, items 3 and 7): relative paths
reach the workers resolved; a scheduler that does not answer, a malformed address and a cluster
lost mid-run each give one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from blursynth.dataset import Manifest, iter_samples, verify
from tests.helpers import assert_one_line_error, random_frames, run_cli, write_frames
from tests.helpers.oracles import assert_blur_close, eq1_oracle as oracle

REPO = Path(__file__).resolve().parents[3]


def _crf_table(folder: Path, exponent: float) -> Path:
    """``curve.txt`` in ``folder``: the inverse CRF v -> (v / 255) ** exponent (256 values)."""
    path = folder / "curve.txt"
    path.write_text("\n".join(f"{(v / 255.0) ** exponent:.10f}" for v in range(256)))
    return path


def test_relative_paths_are_resolved_before_they_reach_the_workers(tmp_path, monkeypatch, dask_cluster):
    """--src, --out and --response crf:FILE given relative, run from a folder that is not the
    workers' working folder, where files of the same names hold other frames and another
    curve: the dataset is made from the files of the command's folder."""
    here, there = tmp_path / "here", dask_cluster.workers_cwd
    name = f"fx/{tmp_path.name}"  # the workers' folder is shared by the session's tests
    frames = random_frames(12, seed=31)
    write_frames(here / name, frames)
    write_frames(there / name, random_frames(12, seed=32))  # what a worker would read by mistake
    _crf_table(here, 1.0)  # linear
    _crf_table(there, 3.0)
    monkeypatch.chdir(here)
    result = run_cli("highspeed", "--src", name, "--tau", "3", "--T", "tau", "--response", "crf:curve.txt",
                     "--shard-size", "1", "--out", "out", "--backend", "dask",
                     "--scheduler", dask_cluster.scheduler_address, "-q")
    assert result.exit_code == 0, result.output
    assert not (there / "out").exists() and verify(here / "out") == []
    samples = list(iter_samples(here / "out"))
    assert len(samples) == 4
    for sample in samples:
        start = int(sample.meta["start"])
        blur, sharp, _ = oracle(frames, start, 3, 3, 1, gamma=1.0)  # the linear curve of here/curve.txt
        assert_blur_close(sample.arrays["blur"], blur)
        np.testing.assert_array_equal(sample.arrays["sharp"], sharp)
    config = Manifest.load(here / "out").config
    assert config["src"] == [str((here / name).resolve())]
    assert config["response"] == f"crf:{here / 'curve.txt'}"  # recorded as it was read: absolute

    # panorama specs name their file absolutely too (rendering them on the cluster would
    # import the panorama modules on both workers: seconds, for the same mechanism)
    from blursynth.panorama import PanoramaConfig
    from blursynth.panorama.pipeline import discover
    from blursynth.panorama.plan import plan

    assert cv2.imwrite(str(here / "pano.png"), np.zeros((32, 64, 3), np.uint8))
    config = PanoramaConfig(src=("pano.png",), n=2, size=(8, 8), latent=0)
    specs = plan(config, discover(config)[0])
    assert {spec.path for spec in specs} == {str(here / "pano.png")}


@pytest.fixture
def mute_server():
    """A TCP address that accepts connections and never says a word (not a Dask scheduler)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []

    def accept():
        while True:
            try:
                accepted.append(server.accept()[0])
            except OSError:  # closed
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in accepted:
        conn.close()


def test_a_scheduler_that_never_answers_gives_one_line_within_the_connect_timeout(tmp_path, mute_server):
    """Dask's connect timeout (30 s by default; 1 s here through Dask's own setting) bounds
    the whole connection; before, the handshake waited for ever (over 200 s)."""
    import dask

    clip = write_frames(tmp_path / "clip", random_frames(6, seed=33))
    box = {}

    def run():
        with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
            box["result"] = run_cli("highspeed", "--src", clip, "--tau", "3", "--out", tmp_path / "o",
                                    "--backend", "dask", "--scheduler", mute_server, "-q")

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "still connecting after 20 s"
    assert time.monotonic() - started < 10
    assert_one_line_error(box["result"], f"--scheduler {mute_server}", "no Dask scheduler answered within 1 s")


@pytest.mark.parametrize("address, words", [
    ("zzz://??", ["--scheduler zzz://??", "not a Dask scheduler address", "zzz"]),
    ("tcp://127.0.0.1:notaport", ["--scheduler tcp://127.0.0.1:notaport", "not a Dask scheduler address"]),
    ("tcp://127.0.0.1:1", ["--scheduler tcp://127.0.0.1:1", "cannot connect"]),
])
def test_a_malformed_or_closed_scheduler_address_is_one_line(tmp_path, address, words):
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=34))
    out = tmp_path / "o"
    result = run_cli("highspeed", "--src", clip, "--tau", "3", "--out", out, "--backend", "dask",
                     "--scheduler", address, "-q")
    assert_one_line_error(result, *words)
    assert not list(out.glob("shard-*"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_cluster_lost_mid_run_is_one_line_and_the_run_resumes(tmp_path):
    """A scheduler killed (-9) while shards are being made: one line, exit 1; the same
    command on local workers then finishes the dataset from where it stopped."""
    clip = write_frames(tmp_path / "clip", random_frames(60, h=24, w=32, seed=35))
    address = f"tcp://127.0.0.1:{_free_port()}"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # started together: the worker keeps trying until the scheduler listens
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", address.rsplit(":", 1)[1], "--no-dashboard"], **quiet)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "2",
                               "--no-nanny", "--no-dashboard"], cwd=tmp_path, **quiet)
    out = tmp_path / "out"
    args = ["highspeed", "--src", clip, "--tau", "3", "--T", "tau", "--shard-size", "1", "--out", out, "-q"]

    def kill_the_scheduler_once_shards_come():
        deadline = time.monotonic() + 60
        while not list(out.glob("shard-*.h5")) and time.monotonic() < deadline:
            time.sleep(0.01)
        scheduler.kill()

    try:
        _wait_until_listening(address)  # the command waits for the worker itself (joblib's probe)
        killer = threading.Thread(target=kill_the_scheduler_once_shards_come, daemon=True)
        killer.start()
        result = run_cli(*args, "--backend", "dask", "--scheduler", address)
        killer.join()
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait()
    assert_one_line_error(result, "the Dask cluster went away; re-run to resume")
    assert result.exit_code == 1
    assert not Manifest.load(out).complete and list(out.glob("shard-*.h5"))
    resumed = run_cli(*args, "--workers", "1")
    assert resumed.exit_code == 0, resumed.output
    assert verify(out) == [] and len(Manifest.load(out).shards) == 20



def _wait_until_listening(address: str, timeout: float = 60) -> None:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens at {address} after {timeout} s"
            time.sleep(0.05)
