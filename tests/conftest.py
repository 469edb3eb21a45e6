"""Fixtures shared by every test (helpers that are not fixtures live in tests/helpers/)."""

from __future__ import annotations

import os
from pathlib import Path

# One OpenMP thread per test process: two xdist workers share two cores, and torch's
# OpenMP threads spinning against each other on a busy machine made the training
# tests five times slower (220 s vs 38 s for one test, measured under load).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from tests.helpers import run_cli


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
    from tests.helpers.handmade import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("trusted") / "data", n_sources=4, per_source=1, seq_len=3,
                             latent=3, seed=9)


@pytest.fixture
def cli():
    """:func:`run_cli` as a fixture."""
    return run_cli


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
