"""Shared test helpers: tiny clips written to tmp folders, one CLI runner, one
one-line-error assertion. Oracles (independent computations) are in oracles.py."""

from __future__ import annotations

import os
from pathlib import Path

# One OpenMP thread per test process: two xdist workers share two cores, and torch's
# OpenMP threads spinning against each other on a busy machine made the training
# tests five times slower (220 s vs 38 s for one test, measured under load).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from blursynth.cli import main


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Files blursynth caches per user (the built-in sample clip) go to a folder of this session."""
    import os

    old = os.environ.get("BLURSYNTH_CACHE")
    os.environ["BLURSYNTH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("BLURSYNTH_CACHE", None)
    else:
        os.environ["BLURSYNTH_CACHE"] = old


@pytest.fixture(scope="session")
def trusted_tiny(tmp_path_factory) -> Path:
    """A tiny trusted test set for ``validate --test`` (so that tests need not make the built-in
    reference test set): four sources of the tiny textures, runs of 3 frames with 3 latent frames."""
    from test_reference_datasets import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("trusted") / "data", n_sources=4, per_source=1, seq_len=3,
                             latent=3, seed=9)


def write_frames(folder: Path, frames: list[np.ndarray], ext: str = ".png", name: str = "f{:d}") -> Path:
    """Write RGB uint8 frames as numbered files (numbers not zero-padded: ordering must be numeric)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / (name.format(i) + ext)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def write_video(path: Path, frames: list[np.ndarray], fps: float = 240.0) -> Path:
    """A lossless FFV1 .avi of RGB frames."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def random_frames(n: int, h: int = 12, w: int = 20, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def run_cli(*args):
    """Run a ``blursynth`` command in-process; returns click's result (stdout and stderr in ``output``)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def run_ok(*args):
    """:func:`run_cli` that requires success."""
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def cli():
    """:func:`run_cli` as a fixture."""
    return run_cli


def assert_one_line_error(result, *words):
    """A user error: non-zero exit, exactly one line of output, no traceback, naming ``words``."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], (word, lines[0])


def train_killed_at(train_call, step: int, monkeypatch) -> None:
    """Run ``train_call()`` and kill it (KeyboardInterrupt) right after it logs ``step``.

    The log line of ``step`` is written first, as a real kill between a step and
    the next checkpoint would leave it.
    """
    import reference_models.train as tr
    real = tr._append_log

    def dying(path, record):
        real(path, record)
        if record.get("step") == step and "loss" in record:
            raise KeyboardInterrupt

    monkeypatch.setattr(tr, "_append_log", dying)
    with pytest.raises(KeyboardInterrupt):
        train_call()
    monkeypatch.setattr(tr, "_append_log", real)


def no_partial_output(out: Path) -> bool:
    """True when ``out`` holds no shard and no temporary file (nothing half-written)."""
    return not out.exists() or not any(p for p in out.iterdir() if ".tmp-" in p.name or p.suffix == ".h5")



@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory):
    """One Dask ``LocalCluster`` for the session: two worker processes of one thread each.

    The workers start in a working folder of their own (``cluster.workers_cwd``),
    as workers on other machines have, so that a relative path that reached them
    would name another file there (issue 19, item 3).
    """
    distributed = pytest.importorskip("distributed")
    home = tmp_path_factory.mktemp("dask-workers-cwd")
    here = os.getcwd()
    os.chdir(home)  # the worker processes are started inside LocalCluster() and keep this folder
    try:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
    finally:
        os.chdir(here)
    cluster.workers_cwd = home
    with cluster:
        yield cluster
