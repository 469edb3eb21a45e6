"""The shard writer: byte-determinism, atomicity, manifest round trip."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from blursynth.errors import BlursynthError
from blursynth.dataset import Manifest, Sample, ShardWriter, file_sha256, open_shard, read_meta


def sample(i, h=12, w=20):
    return Sample({"blur": np.full((1, h, w, 3), i, np.uint8), "sharp": np.full((1, h, w, 3), 200 - i, np.uint8)},
                  {"source": f"clip{i % 2}", "index": i, "value": 0.5 * i})


def write(path, n, capacity, hold_handles=False, compression="none"):
    writer = ShardWriter(path, kind="test", config={"a": 1}, fingerprint="f", shard_index=0,
                         capacity=capacity, compression=compression)
    held = []
    for i in range(n):
        writer.append(sample(i))
        if hold_handles:  # e.g. a debugger, a traceback or a reference cycle keeping a handle
            held.append(writer._file["sharp"])
    return writer.commit()


@pytest.mark.parametrize("compression", ["none", "lzf", "gzip"])
def test_bytes_do_not_depend_on_handle_lifetimes(tmp_path, compression):
    a = write(tmp_path / "a.h5", 3, 3, False, compression)
    b = write(tmp_path / "b.h5", 3, 3, True, compression)
    assert a == b == file_sha256(tmp_path / "a.h5") == hashlib.sha256((tmp_path / "b.h5").read_bytes()).hexdigest()
    # a shard that ends short (skipped samples) too
    assert write(tmp_path / "c.h5", 2, 3, False, compression) == write(tmp_path / "d.h5", 2, 3, True, compression)


def test_contents_and_no_temporary_left(tmp_path):
    write(tmp_path / "s.h5", 2, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]
    with open_shard(tmp_path / "s.h5") as f:
        assert f["blur"].shape == (2, 1, 12, 20, 3) and f.attrs["samples"] == 2
        np.testing.assert_array_equal(f["sharp"][1], np.full((1, 12, 20, 3), 199))
        meta = read_meta(f)
        assert list(meta["source"]) == ["clip0", "clip1"] and list(meta["value"]) == [0.0, 0.5]


def test_abort_removes_the_temporary(tmp_path):
    writer = ShardWriter(tmp_path / "s.h5", kind="t", config={}, fingerprint="f", shard_index=0, capacity=2)
    writer.append(sample(0))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_with_block_commits_on_success_and_removes_everything_on_error(tmp_path):
    header = dict(kind="t", config={}, fingerprint="f", shard_index=0, capacity=2)
    with ShardWriter(tmp_path / "ok.h5", **header) as writer:
        writer.append(sample(0))
    assert [p.name for p in tmp_path.iterdir()] == ["ok.h5"]
    assert writer.digest == hashlib.sha256((tmp_path / "ok.h5").read_bytes()).hexdigest()
    with pytest.raises(KeyError):
        with ShardWriter(tmp_path / "bad.h5", **header) as writer:
            writer.append(sample(1))
            raise KeyError("a renderer failed")
    assert [p.name for p in tmp_path.iterdir()] == ["ok.h5"] and writer.digest is None
    with ShardWriter(tmp_path / "dropped.h5", **header) as writer:  # aborted inside the block: nothing left
        writer.append(sample(2))
        writer.abort()
    assert [p.name for p in tmp_path.iterdir()] == ["ok.h5"]


def test_mismatched_sample_shape_is_a_clear_error(tmp_path):
    writer = ShardWriter(tmp_path / "s.h5", kind="t", config={}, fingerprint="f", shard_index=0, capacity=2)
    writer.append(sample(0))
    with pytest.raises(BlursynthError, match="--resize"):
        writer.append(sample(1, h=13))
    writer.abort()


def test_manifest_round_trip_and_identity(tmp_path):
    m = Manifest(kind="highspeed", config={"tau": [7]}, seed=3, n_samples=10, shard_size=4, compression="none",
                 shards=[{"index": 0, "file": "shard-00000.h5", "samples": 4, "sha256": "ab" * 32}])
    m.save(tmp_path)
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["n_shards"] == 3 and data["samples_written"] == 4 and data["format"] == "blursynth/1"
    back = Manifest.load(tmp_path)
    assert back.identity() == m.identity() and back.fingerprint == m.fingerprint
    other = Manifest(kind="highspeed", config={"tau": [9]}, seed=3, n_samples=10, shard_size=4, compression="none")
    assert other.fingerprint != m.fingerprint
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(BlursynthError, match="unreadable manifest"):
        Manifest.load(tmp_path)
