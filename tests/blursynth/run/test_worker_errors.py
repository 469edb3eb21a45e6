"""Errors found while rendering reach the user the same way for any number of workers
and either backend (issue 7, items 1 and 3)."""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

import blursynth.errors
from blursynth.run.engine import RunOptions, run
from blursynth.errors import BlursynthError
from blursynth.highspeed import KIND, HighspeedConfig, plan, render
from blursynth.dataset import Manifest
from blursynth.sources.clips import discover
from tests.helpers import assert_one_line_error, random_frames, run_cli as cli, write_frames


def one_line_error(result, *words) -> str:
    """:func:`assert_one_line_error`, returning the line."""
    assert_one_line_error(result, *words)
    return result.output.strip()


def error_types():
    return [obj for _, obj in inspect.getmembers(blursynth.errors, inspect.isclass)
            if issubclass(obj, BaseException) and obj.__module__ == blursynth.errors.__name__]


@pytest.mark.parametrize("cls", error_types(), ids=lambda c: c.__name__)
def test_every_error_type_survives_pickle(cls):
    try:
        params = [p for p in inspect.signature(cls).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except ValueError:  # Exception's own __init__: any message
        params = []
    # a value unlike the default where there is one (so that it must travel), else a string
    args = [p.default + 2 if isinstance(p.default, int) else f"<{p.name} of {cls.__name__}>"
            for p in params] or ["a message"]
    exc = cls(*args)
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is cls
    assert str(back) == str(exc)
    assert back.__dict__ == exc.__dict__
    assert back.args == exc.args


def test_the_error_module_has_the_types_the_engine_raises():
    names = {c.__name__ for c in error_types()}
    assert {"BlursynthError", "BadSourceError"} <= names


# ---------------------------------------------------------------- bad sources
def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture
def truncated_clip(tmp_path):
    """A clip whose 6th frame keeps a valid PNG header but loses half its data:
    planning (headers only) accepts it, rendering cannot decode it."""
    clip = write_frames(tmp_path / "clip", random_frames(12, h=40, w=60, seed=3))
    truncate(clip / "f5.png")
    from PIL import Image
    with Image.open(clip / "f5.png") as im:  # the header still reads
        assert im.size == (60, 40)
    assert cv2.imread(str(clip / "f5.png")) is None
    return clip


@pytest.fixture
def corrupt_panorama(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "corrupt.png"
    assert cv2.imwrite(str(path), rng.integers(0, 256, (32, 64, 3), dtype=np.uint8))
    truncate(path)
    return path


def highspeed_args(src, out, workers):
    return ["highspeed", "--src", src, "--tau", "3", "--T", "tau", "--shard-size", "1", "--out", out,
            "-q", "--workers", workers]


@pytest.mark.parametrize("workers", [1, 2])
def test_truncated_png_frame_gives_one_line_for_any_workers(tmp_path, truncated_clip, workers):
    line = one_line_error(cli(*highspeed_args(truncated_clip, tmp_path / f"out{workers}", workers)))
    assert "f5.png" in line and "corrupt" in line and "clip" in line
    assert not list((tmp_path / f"out{workers}").glob("*.tmp-*"))
    assert not Manifest.load(tmp_path / f"out{workers}").complete


def test_truncated_png_frame_same_line_with_one_and_two_workers(tmp_path, truncated_clip):
    lines = {w: one_line_error(cli(*highspeed_args(truncated_clip, tmp_path / f"o{w}", w))) for w in (1, 2)}
    assert lines[1] == lines[2]


def test_corrupt_panorama_same_line_with_one_and_two_workers(tmp_path, corrupt_panorama):
    lines = {}
    for workers in (1, 2):
        result = cli("panorama", "--src", corrupt_panorama, "--n", 4, "--size", "8x8", "--shard-size", 1,
                     "--latent", 0, "--out", tmp_path / f"o{workers}", "-q", "--workers", workers)
        lines[workers] = one_line_error(result)
    assert lines[1] == lines[2]
    assert "corrupt.png" in lines[1]


def plan_then_delete(clip: Path):
    """Specs planned from a whole clip, then one of its frames deleted."""
    config = HighspeedConfig(src=(str(clip),), tau=(3,), T="tau")
    clips, _ = discover(config.src)
    specs, _ = plan(config, clips)
    (clip / "f7.png").unlink()
    return config, specs


def run_to_error(config, specs, out, **options) -> str:
    with pytest.raises(BlursynthError) as info:
        run(KIND, config.to_dict(), config.seed, specs, render,
            RunOptions(out=out, shard_size=1, quiet=True, **options))
    assert type(info.value) is blursynth.errors.BadSourceError
    return str(info.value)


def test_frame_deleted_after_planning_same_error_with_one_and_two_workers(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(12, seed=4))
    config, specs = plan_then_delete(clip)
    messages = {w: run_to_error(config, specs, tmp_path / f"o{w}", workers=w) for w in (1, 2)}
    assert messages[1] == messages[2]
    assert "f7.png" in messages[1] and "cannot read" in messages[1]


def test_dask_reports_bad_sources_as_one_worker_does(tmp_path, dask_cluster, truncated_clip, corrupt_panorama):
    dask = ["--backend", "dask", "--scheduler", dask_cluster.scheduler_address]
    # a truncated PNG frame
    local = one_line_error(cli(*highspeed_args(truncated_clip, tmp_path / "l1", 1)))
    remote = one_line_error(cli(*highspeed_args(truncated_clip, tmp_path / "d1", 2), *dask))
    assert remote == local
    # a corrupt panorama
    args = ["panorama", "--src", corrupt_panorama, "--n", 4, "--size", "8x8", "--shard-size", 1, "--latent", 0,
            "-q"]
    local = one_line_error(cli(*args, "--out", tmp_path / "l2", "--workers", 1))
    remote = one_line_error(cli(*args, "--out", tmp_path / "d2", *dask))
    assert remote == local
    # a frame deleted after planning
    clip = write_frames(tmp_path / "clip2", random_frames(12, seed=4))
    config, specs = plan_then_delete(clip)
    local = run_to_error(config, specs, tmp_path / "l3", workers=1)
    remote = run_to_error(config, specs, tmp_path / "d3", backend="dask", scheduler=dask_cluster.scheduler_address)
    assert remote == local


# --------------------------------------------------- --skip-bad, nothing left
@pytest.mark.parametrize("workers", [1, 2])
def test_skip_bad_with_every_source_bad_while_rendering_is_an_error(tmp_path, truncated_clip, workers):
    out = tmp_path / "out"
    result = cli(*highspeed_args(truncated_clip, out, workers), "--skip-bad")
    line = one_line_error(result)
    assert "no usable source" in line and "f5.png" in line
    manifest = Manifest.load(out)
    assert not manifest.complete
    assert sum(e["samples"] for e in manifest.shards) == 0
    # the same command again (a resume) says the same, and still writes nothing complete
    again = one_line_error(cli(*highspeed_args(truncated_clip, out, workers), "--skip-bad"))
    assert again == line and not Manifest.load(out).complete


def test_skip_bad_with_one_good_source_left_still_succeeds(tmp_path, truncated_clip):
    src = tmp_path / "src"
    src.mkdir()
    truncated_clip.rename(src / "bad")
    write_frames(src / "good", random_frames(12, h=40, w=60, seed=9))
    out = tmp_path / "out"
    result = cli(*highspeed_args(src, out, 2), "--skip-bad")
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(out)
    assert manifest.complete and [s["source"] for s in manifest.skipped] == ["bad"]
    assert sum(e["samples"] for e in manifest.shards) == 4
