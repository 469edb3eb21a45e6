"""The highspeed pipeline against an independent float64 computation of Eq. 1."""

from __future__ import annotations

import json

import cv2
import h5py
import numpy as np
import pytest

from blursynth.run.engine import RunOptions
from blursynth.highspeed import HighspeedConfig, draw_exposure, synthesize
from blursynth.dataset import Manifest, iter_samples, verify
from tests.helpers.oracles import assert_blur_close, eq1_oracle as oracle
from tests.helpers import random_frames, write_frames, write_video


def run_highspeed(tmp_path, src, name="out", workers=1, shard_size=4, skip_bad=False, **config):
    options = RunOptions(out=tmp_path / name, workers=workers, shard_size=shard_size, quiet=True,
                         skip_bad=skip_bad)
    manifest = synthesize(HighspeedConfig(src=tuple(map(str, src)), **config), options)
    return manifest, list(iter_samples(tmp_path / name))


def test_frames_folder_blur_sharp_latent(tmp_path):
    frames = random_frames(40, seed=1)
    clip = write_frames(tmp_path / "clip", frames)
    manifest, samples = run_highspeed(tmp_path, [clip], tau=(5,), T=(7,), seq_len=2, latent=3)
    # 40 frames, tau 5, T 7 -> exposures at 0,7,...,35 -> 6 exposures -> 3 samples of L=2
    assert manifest.complete and len(samples) == 3
    for s, sample in enumerate(samples):
        start = s * 2 * 7
        blur, sharp, latent = oracle(frames, start, 5, 7, 2, K=3)
        assert sample.arrays["blur"].shape == (2, 12, 20, 3)
        assert_blur_close(sample.arrays["blur"], blur)
        np.testing.assert_array_equal(sample.arrays["sharp"], sharp)
        np.testing.assert_array_equal(sample.arrays["latent"], latent)
        assert sample.meta["start"] == start and sample.meta["tau"] == 5 and sample.meta["T"] == 7
        assert sample.meta["source"] == "clip" and sample.meta["index"] == s
        assert sample.meta["fps"] == 240.0


def test_frames_are_ordered_by_number_not_name(tmp_path):
    frames = random_frames(12, seed=2)
    clip = write_frames(tmp_path / "c", frames, name="frame_{:d}")  # frame_10 sorts before frame_2 by name
    _, samples = run_highspeed(tmp_path, [clip], tau=(3,), T="tau")
    for n, sample in enumerate(samples):
        np.testing.assert_array_equal(sample.arrays["sharp"][0], frames[3 * n + 1])


def test_video_file_matches_frames(tmp_path):
    frames = random_frames(30, h=16, w=24, seed=3)
    video = write_video(tmp_path / "v.avi", frames)
    # shard_size 1 and 2 workers: later shards start mid-video in a fresh process
    manifest, samples = run_highspeed(tmp_path, [video], tau=(3,), T=(4,), latent=2, workers=2, shard_size=1)
    assert len(samples) == 7
    for n, sample in enumerate(samples):
        blur, sharp, latent = oracle(frames, 4 * n, 3, 4, 1, K=2)
        assert_blur_close(sample.arrays["blur"], blur)
        np.testing.assert_array_equal(sample.arrays["sharp"], sharp)
        np.testing.assert_array_equal(sample.arrays["latent"], latent)
        assert sample.meta["source"] == "v.avi"


def test_tree_of_clips_and_responses(tmp_path):
    a, b = random_frames(9, seed=4), random_frames(9, seed=5)
    write_frames(tmp_path / "root" / "GOPR01", a)
    jpgs = write_frames(tmp_path / "root" / "sub" / "GOPR02", b, ext=".jpg")
    b_read = [cv2.cvtColor(cv2.imread(str(jpgs / f"f{i}.jpg")), cv2.COLOR_BGR2RGB) for i in range(9)]
    _, samples = run_highspeed(tmp_path, [tmp_path / "root"], tau=(9,), T="tau", response="linear")
    assert [s.meta["source"] for s in samples] == ["GOPR01", "sub/GOPR02"]
    for sample, frames in zip(samples, (a, b_read)):
        blur, _, _ = oracle(frames, 0, 9, 9, 1, gamma=1.0)
        assert_blur_close(sample.arrays["blur"], blur)


def test_static_scene_gives_blur_equal_to_sharp_with_resize(tmp_path):
    frame = random_frames(1, h=30, w=40, seed=6)[0]
    clip = write_frames(tmp_path / "static", [frame] * 7)
    _, samples = run_highspeed(tmp_path, [clip], tau=(7,), T="tau", resize=(20, 15), response="srgb")
    blur, sharp = samples[0].arrays["blur"], samples[0].arrays["sharp"]
    assert blur.shape == (1, 15, 20, 3)
    assert np.abs(blur.astype(int) - sharp).max() <= 1
    # Area resampling in linear light: each output pixel is the mean of a 2x2 block.
    lin = (frame / 255.0) ** 2.4  # close to sRGB; compare loosely
    block = lin.reshape(15, 2, 20, 2, 3).mean((1, 3))
    assert np.abs(sharp[0] / 255.0 - block ** (1 / 2.4)).max() < 0.03


def test_tau_T_draws(tmp_path):
    config = HighspeedConfig(src=("x",), tau=(7, 9, 11), seed=3)
    draws = [draw_exposure(config, f"clip{i}", 0) for i in range(300)]
    for tau, T in draws:
        assert tau in (7, 9, 11) and tau <= T <= 2 * tau - 1
    assert {t for t, _ in draws} == {7, 9, 11}
    assert {T - tau for tau, T in draws if tau == 7} == set(range(7))
    # A clip's draw depends on its id, not on the other clips
    assert draw_exposure(config, "clip5", 0) == draws[5]


def test_workers_1_and_2_identical(tmp_path):
    for i in range(3):
        write_frames(tmp_path / "src" / f"c{i}", random_frames(25, seed=10 + i))
    m1, s1 = run_highspeed(tmp_path, [tmp_path / "src"], "one", workers=1, shard_size=2, tau=(3, 5), repeats=2)
    m2, s2 = run_highspeed(tmp_path, [tmp_path / "src"], "two", workers=2, shard_size=2, tau=(3, 5), repeats=2)
    assert len(s1) == len(s2) > 6
    assert [e["sha256"] for e in m1.shards] == [e["sha256"] for e in m2.shards]
    for a, b in zip(s1, s2):
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    assert verify(tmp_path / "one") == []


def test_shard_layout(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(20, seed=7))
    run_highspeed(tmp_path, [clip], tau=(3,), T="tau", latent=2, shard_size=4)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["format"] == "blursynth/1" and manifest["kind"] == "highspeed"
    assert manifest["n_samples"] == 6 and [s["samples"] for s in manifest["shards"]] == [4, 2]
    assert manifest["config"]["tau"] == [3] and manifest["config"]["response"] == "gamma:2.2"
    with h5py.File(tmp_path / "out" / "shard-00000.h5", "r") as f:
        assert f.attrs["schema"] == "blursynth/1" and f.attrs["kind"] == "highspeed"
        assert json.loads(f.attrs["config"])["seq_len"] == 1
        assert f["blur"].shape == (4, 1, 12, 20, 3) and f["blur"].dtype == np.uint8
        assert f["blur"].chunks == (1, 1, 12, 20, 3)
        assert f["latent"].shape == (4, 1, 2, 12, 20, 3) and f["latent"].chunks == (1, 1, 1, 12, 20, 3)
        assert set(f["meta"]) >= {"source", "start", "tau", "T", "fps", "seed", "index"}
        assert list(f["meta/start"][()]) == [0, 3, 6, 9]
    seeds = [s.meta["seed"] for s in iter_samples(tmp_path / "out")]
    assert len(set(seeds)) == len(seeds)


def test_resume_keeps_finished_shards_and_detects_corruption(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(30, seed=8))
    manifest, _ = run_highspeed(tmp_path, [clip], tau=(3,), T="tau", shard_size=3)
    out = tmp_path / "out"
    first = {e["file"]: e["sha256"] for e in manifest.shards}
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.h5")}
    # Corrupt one shard, delete another, drop one from the manifest: a re-run repairs all.
    with open(out / "shard-00001.h5", "r+b") as fh:
        fh.seek(-100, 2)
        fh.write(b"\0" * 50)
    (out / "shard-00002.h5").unlink()
    data = json.loads((out / "manifest.json").read_text())
    data["shards"] = [s for s in data["shards"] if s["index"] != 3]
    data["complete"] = False
    (out / "manifest.json").write_text(json.dumps(data))
    assert verify(out)
    manifest2, _ = run_highspeed(tmp_path, [clip], tau=(3,), T="tau", shard_size=3)
    assert {e["file"]: e["sha256"] for e in manifest2.shards} == first
    assert (out / "shard-00000.h5").stat().st_mtime_ns == mtimes["shard-00000.h5"]
    assert (out / "shard-00003.h5").stat().st_mtime_ns == mtimes["shard-00003.h5"]
    assert verify(out) == []
    assert Manifest.load(out).complete


@pytest.mark.parametrize("kwargs, match", [
    ({"tau": (6,)}, "--tau 6: even tau"),
    ({"tau": (7,), "T": (5,)}, "--T 5"),
    ({"tau": (7,), "latent": 5}, "--latent 5"),
    ({"tau": (7,), "seq_len": 0}, "--seq-len 0"),
    ({"response": "bogus"}, "--response bogus"),
])
def test_config_errors(kwargs, match):
    from blursynth.errors import BlursynthError
    with pytest.raises(BlursynthError, match=match):
        HighspeedConfig(src=("x",), **kwargs)


@pytest.mark.parametrize("threads", [1, 2])
def test_frame_stream_with_and_without_readahead(tmp_path, threads):
    from blursynth.highspeed import FrameStream, HighspeedConfig, plan
    from blursynth.sources.clips import discover
    from blursynth.run.worker import Worker

    frames = random_frames(20, seed=30)
    write_frames(tmp_path / "c", frames)
    clips, _ = discover([tmp_path / "c"])
    spec = plan(HighspeedConfig(src=(str(tmp_path / "c"),), tau=(3,), T=(4,), seq_len=2), clips)[0][1]
    indices = [spec.start, spec.start + 2, spec.start + 5]
    got = list(FrameStream(spec, Worker(threads)).stream(indices))
    for k, frame in zip(indices, got):
        np.testing.assert_array_equal(frame[..., ::-1], frames[k])  # BGR from the decoder


def test_a_worker_kept_between_samples_changes_no_byte(tmp_path):
    """Decodes carried from one render call to the next (a worker with a spare
    thread) give the same samples as rendering each spec on its own."""
    from blursynth.highspeed import HighspeedConfig, plan, render
    from blursynth.sources.clips import discover
    from blursynth.run.worker import Worker

    write_frames(tmp_path / "c", random_frames(40, seed=31))
    write_video(tmp_path / "v.avi", random_frames(40, seed=32))
    clips, _ = discover([tmp_path / "c", tmp_path / "v.avi"])
    specs, _ = plan(HighspeedConfig(src=("c", "v.avi"), tau=(3,), T=(4,), seq_len=2), clips)
    assert len(specs) > 4 and any(spec.ahead for spec in specs)
    worker = Worker(threads=2)
    for spec in specs:
        kept, alone = render(spec, worker), render(spec)
        for name in alone.arrays:
            np.testing.assert_array_equal(kept.arrays[name], alone.arrays[name])
        assert kept.meta == alone.meta


def test_mp4_and_frame_folder_mixed(tmp_path):
    """A lossy mp4 beside a frame folder: the oracle decodes the mp4 itself."""
    frames = random_frames(20, h=32, w=48, seed=40)
    path = tmp_path / "src" / "take.mp4"
    path.parent.mkdir()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 240, (48, 32))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    write_frames(tmp_path / "src" / "folder", random_frames(10, h=32, w=48, seed=41))
    cap, decoded = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        decoded.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    assert len(decoded) == 20
    _, samples = run_highspeed(tmp_path, [tmp_path / "src"], tau=(5,), T="tau", shard_size=2, workers=2)
    video = [s for s in samples if s.meta["source"] == "take.mp4"]
    assert [s.meta["source"] for s in samples] == ["folder"] * 2 + ["take.mp4"] * 4
    for n, sample in enumerate(video):
        blur, sharp, _ = oracle(decoded, 5 * n, 5, 5, 1)
        assert_blur_close(sample.arrays["blur"], blur)
        np.testing.assert_array_equal(sample.arrays["sharp"], sharp)
