"""Source files that change while a dataset is made (issue 19, item 9): the render stops with
one line naming the file, shards record what they were made from, a resume and
``verify --sources`` check it."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

import blursynth.highspeed.pipeline as pipeline
from blursynth.dataset import Manifest, file_sha256, iter_samples, recorded_sources, verify
from tests.helpers import assert_one_line_error, random_frames, run_cli, write_frames
from tests.helpers.oracles import assert_blur_close, eq1_oracle as oracle

ARGS = ("--tau", "5", "--T", "5", "--shard-size", "1", "--workers", "1", "-q")


def _replace(path: Path, frame: np.ndarray) -> None:
    """Write ``frame`` (RGB) to ``path`` as another program replacing the file would."""
    assert cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))


def test_a_frame_replaced_while_it_is_read_stops_the_run_naming_it(tmp_path, monkeypatch):
    """The frame is replaced during the render of the sample that reads it: one line naming
    the file, that sample's shard is not written; the re-run makes the rest from the new file
    (no shard mixes old and new frames), and verify --sources is content."""
    old = random_frames(20, seed=41)
    clip = write_frames(tmp_path / "clip", old)
    new = random_frames(1, seed=42)[0]
    changed = clip / "f13.png"  # read by sample 2 only (frames 10..14)
    render = pipeline.render

    def render_and_replace(spec, worker=None):
        sample = render(spec, worker)
        if spec.start == 10:
            _replace(changed, new)
        return sample

    monkeypatch.setattr(pipeline, "render", render_and_replace)
    out = tmp_path / "out"
    result = run_cli("highspeed", "--src", clip, *ARGS, "--out", out)
    assert_one_line_error(result, str(changed), "since this run was planned", "new --out")
    assert sorted(p.name for p in out.glob("shard-*.h5")) == ["shard-00000.h5", "shard-00001.h5"]

    monkeypatch.setattr(pipeline, "render", render)
    resumed = run_cli("highspeed", "--src", clip, *ARGS, "--out", out)
    assert resumed.exit_code == 0, resumed.output
    frames = old[:13] + [new] + old[14:]
    samples = list(iter_samples(out))
    assert [int(s.meta["start"]) for s in samples] == [0, 5, 10, 15]
    for sample in samples:
        blur, sharp, _ = oracle(frames, int(sample.meta["start"]), 5, 5, 1)
        assert_blur_close(sample.arrays["blur"], blur)
        np.testing.assert_array_equal(sample.arrays["sharp"], sharp)
    assert verify(out, sources=True) == []
    assert run_cli("verify", out, "--sources").exit_code == 0


def test_shards_record_the_files_they_were_made_from(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(10, seed=43))
    out = tmp_path / "out"
    assert run_cli("highspeed", "--src", clip, *ARGS, "--out", out).exit_code == 0
    for k, start in enumerate((0, 5)):
        expected = []
        for i in range(start, start + 5):
            st = os.stat(clip / f"f{i}.png")
            expected.append((str(clip / f"f{i}.png"), st.st_size, st.st_mtime_ns))
        assert recorded_sources(out / f"shard-0000{k}.h5") == sorted(expected)


def test_verify_sources_names_each_changed_file_once(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(15, seed=44))
    out = tmp_path / "out"
    assert run_cli("highspeed", "--src", clip, *ARGS, "--out", out).exit_code == 0
    assert run_cli("verify", out, "--sources").exit_code == 0
    touched, rewritten, gone = clip / "f1.png", clip / "f7.png", clip / "f12.png"
    st = os.stat(touched)
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same bytes, another time
    _replace(rewritten, random_frames(1, h=30, w=30, seed=45)[0])  # another size
    gone.unlink()
    plain = run_cli("verify", out)
    assert plain.exit_code == 0, plain.output  # the shards themselves are intact
    result = run_cli("verify", out, "--sources")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 3, result.output
    assert f"shard-00000.h5: source file {touched} was modified" in lines[0]
    assert f"shard-00001.h5: source file {rewritten} changed size" in lines[1]
    assert f"shard-00002.h5: source file {gone} is gone" in lines[2]


def test_a_resume_refuses_shards_made_from_files_that_changed_since(tmp_path):
    """A finished (or killed) dataset whose source changed: the same command does not
    add shards from the new files beside shards from the old ones."""
    clip = write_frames(tmp_path / "clip", random_frames(10, seed=46))
    out = tmp_path / "out"
    assert run_cli("highspeed", "--src", clip, *ARGS, "--out", out).exit_code == 0
    manifest = Manifest.load(out)
    manifest.complete = False  # as a killed run leaves it
    manifest.shards = manifest.shards[:1]
    manifest.save(out)
    (out / "shard-00001.h5").unlink()
    _replace(clip / "f2.png", random_frames(1, seed=47)[0])
    result = run_cli("highspeed", "--src", clip, *ARGS, "--out", out)
    assert_one_line_error(result, str(clip / "f2.png"), "since shard-00000.h5 was made from it")
    assert not (out / "shard-00001.h5").exists()


def test_verify_sources_on_a_dataset_without_records_says_so(tmp_path):
    """Shards written before source files were recorded cannot be checked; verify says which."""
    import h5py

    clip = write_frames(tmp_path / "clip", random_frames(5, seed=48))
    out = tmp_path / "out"
    assert run_cli("highspeed", "--src", clip, *ARGS, "--out", out).exit_code == 0
    with h5py.File(out / "shard-00000.h5", "r+") as f:
        del f["source_files"]
    manifest = Manifest.load(out)
    manifest.shards[0]["sha256"] = file_sha256(out / "shard-00000.h5")
    manifest.save(out)
    result = run_cli("verify", out, "--sources")
    assert result.exit_code == 1 and "shard-00000.h5: records no source files" in result.output
