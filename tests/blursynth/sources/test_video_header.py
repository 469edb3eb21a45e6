"""Videos whose container header claims more frames than decode (issue 7, item 2)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from blursynth.dataset import Manifest, iter_samples
from blursynth.sources.clips import decodable_frames, discover
from tests.helpers import random_frames, run_cli as cli, write_video


def decode_all(path: Path) -> list[np.ndarray]:
    """The test's own decode: every frame cv2.read gives, in order, as RGB."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


@pytest.fixture
def lying_video(tmp_path):
    """A real FFV1 AVI cut after half its bytes: the header still claims 40 frames."""
    full = write_video(tmp_path / "full.avi", random_frames(40, seed=8))
    data = full.read_bytes()
    path = tmp_path / "src" / "lying.avi"
    path.parent.mkdir()
    path.write_bytes(data[: len(data) // 2])
    full.unlink()
    cap = cv2.VideoCapture(str(path))
    header = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    decoded = len(decode_all(path))
    assert header == 40 and 3 <= decoded < header, (header, decoded)
    return path


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("BLURSYNTH_CACHE", str(folder))
    return folder


@pytest.mark.parametrize("skip_bad", [False, True])
def test_the_plan_uses_the_frames_that_decode(tmp_path, lying_video, skip_bad):
    frames = decode_all(lying_video)
    out = tmp_path / "out"
    args = ["highspeed", "--src", lying_video.parent, "--tau", "3", "--T", "tau", "--shard-size", "2",
            "--workers", "2", "--out", out, "-q"] + (["--skip-bad"] if skip_bad else [])
    result = cli(*args)
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(out)
    assert manifest.complete and manifest.skipped == []
    samples = list(iter_samples(out))
    assert len(samples) == (len(frames) - 3) // 3 + 1  # every whole exposure of the decodable frames
    for sample in samples:
        start = int(sample.meta["start"])
        np.testing.assert_array_equal(sample.arrays["sharp"][0], frames[start + 1])
    assert manifest.sources == [{"source": "lying.avi", "header_frames": 40, "decoded_frames": len(frames)}]
    assert json.loads((out / "manifest.json").read_text())["sources"] == manifest.sources


def test_the_count_is_cached_by_size_and_mtime(lying_video, cache_dir):
    n = len(decode_all(lying_video))
    assert decodable_frames(lying_video, "lying.avi") == n
    cache = json.loads((cache_dir / "video-frames.json").read_text())
    entry = cache[str(lying_video.resolve())]
    st = lying_video.stat()
    assert entry == {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "frames": n}
    # A re-run takes the cached count (here planted, to see that it is used) ...
    entry["frames"] = 5
    (cache_dir / "video-frames.json").write_text(json.dumps(cache))
    clips, _ = discover([lying_video])
    assert clips[0].n_frames == 5 and clips[0].header_frames == 40
    # ... until the file changes.
    os.utime(lying_video, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert decodable_frames(lying_video, "lying.avi") == n


def test_an_unwritable_cache_only_costs_time(lying_video, cache_dir):
    cache_dir.parent.mkdir(exist_ok=True)
    cache_dir.write_text("a file where the cache folder should be")
    assert decodable_frames(lying_video, "lying.avi") == len(decode_all(lying_video))


def test_a_video_with_no_decodable_frame_is_a_bad_source(tmp_path):
    full = write_video(tmp_path / "full.avi", random_frames(10, seed=9))
    data = full.read_bytes()
    broken = tmp_path / "src" / "broken.avi"
    broken.parent.mkdir()
    # the container header survives, the frame data does not
    header_end = data.index(b"movi") + 8
    broken.write_bytes(data[:header_end])
    result = cli("highspeed", "--src", broken, "--tau", "3", "--out", tmp_path / "o", "-q", "--workers", "1")
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "broken.avi" in lines[0], result.output
