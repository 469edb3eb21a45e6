"""Integrity on read: checksummed frame chunks, damaged shards named in one line,
sample counts checked by verify, old-format datasets still read (issue 7, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from blursynth.errors import BlursynthError
from blursynth.dataset import FORMAT_VERSION, Manifest, file_sha256, iter_samples, open_shard, verify
from tests.helpers import assert_one_line_error, random_frames, run_cli as cli, write_frames


@pytest.fixture
def dataset(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(12, h=16, w=24, seed=7))
    out = tmp_path / "data"
    result = cli("highspeed", "--src", clip, "--tau", "3", "--T", "tau", "--latent", "2", "--shard-size", "2",
                 "--workers", "1", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    return out


def chunk_offset(path: Path, name: str, chunk: int = 0) -> tuple[int, int]:
    """(byte offset, size) of a frame chunk in the file, from HDF5's own chunk index."""
    with h5py.File(path, "r") as f:
        info = f[name].id.get_chunk_info(chunk)
    return info.byte_offset, info.size


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_frame_chunks_carry_fletcher32_and_the_new_version(dataset):
    manifest = Manifest.load(dataset)
    assert manifest.format_version == FORMAT_VERSION == 2
    assert json.loads((dataset / "manifest.json").read_text())["format_version"] == 2
    with h5py.File(dataset / manifest.shards[0]["file"], "r") as f:
        assert f.attrs["format_version"] == 2
        for name in ("blur", "sharp", "latent"):
            assert f[name].fletcher32, name


def test_a_flipped_byte_is_reported_with_the_shard_name_by_every_reader(tmp_path, dataset):
    shard = dataset / "shard-00001.h5"
    offset, size = chunk_offset(shard, "sharp", 0)
    flip_byte(shard, offset + size // 2)
    words = ["shard-00001.h5", "damaged shard"]
    with pytest.raises(BlursynthError) as info:
        list(iter_samples(dataset))
    assert all(w in str(info.value) for w in words) and "sharp" in str(info.value)
    assert_one_line_error(cli("preview", dataset, "--out", tmp_path / "p.png", "--n", 4), *words)
    assert not (tmp_path / "p.png").exists()
    from reference_models.data import PairDataset, ShardIndex, VideoClipDataset
    index = ShardIndex(dataset)  # reads meta only: fine
    damaged = [i for i, r in enumerate(index.refs) if r.file == "shard-00001.h5" and r.row == 0]
    for make in (PairDataset, VideoClipDataset):
        data = make(index)
        data[0]  # an intact sample reads
        with pytest.raises(BlursynthError, match="shard-00001.h5.*damaged shard"):
            data[damaged[0]]
    problems = verify(dataset)
    assert [p for p in problems if p.startswith("shard-00001.h5")] == [
        "shard-00001.h5: sha256 mismatch (corrupted or modified)"]
    assert_one_line_error(cli("verify", dataset), "shard-00001.h5", "sha256 mismatch")


@pytest.mark.parametrize("damage", ["signature", "truncated"])
def test_a_corrupt_hdf5_header_is_one_line(tmp_path, dataset, damage):
    shard = dataset / "shard-00000.h5"
    data = shard.read_bytes()
    shard.write_bytes(b"\0" * 8 + data[8:] if damage == "signature" else data[:200])
    with pytest.raises(BlursynthError, match="shard-00000.h5: damaged shard"):
        list(iter_samples(dataset))
    for args in (["info", dataset], ["preview", dataset, "--out", tmp_path / "p.png"]):
        assert_one_line_error(cli(*args), "shard-00000.h5", "damaged shard")
    assert [p for p in verify(dataset) if p.startswith("shard-00000.h5")] == [
        "shard-00000.h5: sha256 mismatch (corrupted or modified)"]
    from reference_models.data import ShardIndex
    with pytest.raises(BlursynthError, match="shard-00000.h5"):
        ShardIndex(dataset)


def test_a_missing_attribute_is_one_line_not_a_key_error(tmp_path, dataset):
    shard = dataset / "shard-00000.h5"
    with h5py.File(shard, "a") as f:
        del f.attrs["samples"]
    with pytest.raises(BlursynthError, match="shard-00000.h5: damaged shard.*samples"):
        list(iter_samples(dataset))
    # verify: the bytes changed (one line); with the manifest's sha256 updated too, the count check finds it
    assert "shard-00000.h5: sha256 mismatch (corrupted or modified)" in verify(dataset)
    manifest = json.loads((dataset / "manifest.json").read_text())
    manifest["shards"][0]["sha256"] = file_sha256(shard)
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    assert [p for p in verify(dataset) if p.startswith("shard-00000.h5")][0].startswith(
        "shard-00000.h5: damaged shard")


def test_verify_checks_sample_counts_against_the_shards(dataset):
    assert verify(dataset) == []
    manifest = json.loads((dataset / "manifest.json").read_text())
    planned = manifest["n_samples"]
    assert manifest["shards"][1]["samples"] == 2
    manifest["shards"][1]["samples"] = 5  # the file is unchanged: its sha256 still matches
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    problems = verify(dataset)
    assert "shard-00001.h5: the manifest says 5 samples, the shard holds 2" in problems
    assert f"the shards hold {planned + 3} samples, the manifest plans {planned}" in problems
    manifest["shards"][1]["samples"] = 2
    manifest["shards"].append(dict(manifest["shards"][0]))  # the same shard listed twice
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    assert any("repeated" in p for p in verify(dataset))


# ------------------------------------------------------------ old format (1)
def write_format_1(out: Path, frames: list[np.ndarray]) -> None:
    """A version-1 dataset written by hand as docs/format.md described it then:
    one frame per chunk, no checksum, ``format_version`` 1."""
    out.mkdir()
    path = out / "shard-00000.h5"
    n = len(frames)
    with h5py.File(path, "w") as f:
        for key, value in {"schema": "blursynth/1", "format_version": 1, "kind": "highspeed", "config": "{}",
                           "fingerprint": "0" * 64, "shard_index": 0, "samples": n,
                           "blursynth_version": "0.1.0"}.items():
            f.attrs[key] = value
        for name, offset in (("blur", 0), ("sharp", 1)):
            data = np.stack([[(frame + offset).astype(np.uint8)] for frame in frames])
            f.create_dataset(name, data=data, chunks=(1, 1, *frames[0].shape))
        meta = f.create_group("meta")
        meta.create_dataset("index", data=np.arange(n, dtype=np.int64))
        meta.create_dataset("source", data=np.array(["clip"] * n, dtype=h5py.string_dtype("utf-8")))
        meta.create_dataset("seed", data=np.arange(n, dtype=np.int64) + 100)
    manifest = {"format": "blursynth/1", "format_version": 1, "kind": "highspeed", "blursynth_version": "0.1.0",
                "seed": 0, "config": {}, "fingerprint": "0" * 64, "n_samples": n, "shard_size": n,
                "compression": "none", "n_shards": 1, "complete": True, "samples_written": n,
                "shards": [{"index": 0, "file": path.name, "samples": n, "sha256": file_sha256(path)}],
                "skipped": []}
    (out / "manifest.json").write_text(json.dumps(manifest))


def test_old_format_datasets_still_read(tmp_path):
    frames = random_frames(3, h=8, w=10, seed=11)
    old = tmp_path / "old"
    write_format_1(old, frames)
    with open_shard(old / "shard-00000.h5") as f:
        assert not f["blur"].fletcher32
    samples = list(iter_samples(old))
    assert len(samples) == 3
    for sample, frame in zip(samples, frames):
        np.testing.assert_array_equal(sample.arrays["blur"][0], frame)
        np.testing.assert_array_equal(sample.arrays["sharp"][0], frame + 1)
    assert [int(s.meta["seed"]) for s in samples] == [100, 101, 102]
    assert verify(old) == []
    assert Manifest.load(old).format_version == 1
    from reference_models.data import PairDataset, ShardIndex
    item = PairDataset(ShardIndex(old))[2]
    np.testing.assert_array_equal(np.asarray(item["blur"]).transpose(1, 2, 0), frames[2])
    result = cli("verify", old)
    assert result.exit_code == 0, result.output


def test_a_run_into_an_old_format_dataset_is_refused_without_overwrite(tmp_path):
    old = tmp_path / "old"
    write_format_1(old, random_frames(3, h=8, w=10))
    clip = write_frames(tmp_path / "clip", random_frames(6))
    assert_one_line_error(cli("highspeed", "--src", clip, "--tau", "3", "--out", old, "-q", "--workers", "1"),
                          "older dataset format", "--overwrite")
    assert verify(old) == []
