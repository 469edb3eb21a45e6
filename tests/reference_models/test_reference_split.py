"""Split by source: no source in two splits, deterministic, fractions respected."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from blursynth.errors import BlursynthError
from reference_models.data import ShardIndex
from reference_models.heldout import load_split, make_split, split_sources
from tests.helpers.handmade import make_tiny_dataset


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("val,test", [(0.1, 0.1), (0.3, 0.2), (0.0, 0.25), (0.2, 0.0)])
def test_no_source_in_two_splits(seed, val, test):
    counts = {f"clip-{k:02d}": 1 + (k * 7) % 5 for k in range(23)}
    parts = split_sources(counts, val, test, seed)
    seen = Counter(s for v in parts.values() for s in v)
    assert set(seen) == set(counts) and max(seen.values()) == 1  # every source exactly once
    total = sum(counts.values())
    for name, frac in (("val", val), ("test", test)):
        got = sum(counts[s] for s in parts[name]) / total
        assert (got > 0) == (frac > 0)
        assert abs(got - frac) <= 5 / total  # off by at most one source
    assert parts["train"]


def test_split_is_deterministic_and_order_free():
    counts = {f"p{k}": 3 for k in range(10)}
    a = split_sources(counts, 0.2, 0.2, seed=3)
    b = split_sources(dict(reversed(list(counts.items()))), 0.2, 0.2, seed=3)
    assert a == b
    assert any(split_sources(counts, 0.2, 0.2, seed=s) != a for s in range(4, 9))


def test_every_part_gets_a_source():
    parts = split_sources({"a": 100, "b": 1, "c": 1}, 0.05, 0.05, seed=0)
    assert all(len(v) == 1 for v in parts.values())
    with pytest.raises(BlursynthError, match="at least one source per part"):
        split_sources({"a": 1, "b": 1}, 0.1, 0.1, seed=0)
    with pytest.raises(BlursynthError, match="nothing to train"):
        split_sources({"a": 1, "b": 1, "c": 1}, 0.5, 0.5, seed=0)
    with pytest.raises(BlursynthError, match="--val"):
        split_sources({"a": 1, "b": 1}, -0.1, 0.1, seed=0)


def test_split_file_of_a_dataset(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_sources=5, per_source=2, seq_len=3)
    path = make_split(data, val=0.2, test=0.2, seed=7)
    assert path == data / "split.json"
    doc = load_split(path, data)
    index = ShardIndex(data)
    by_split = {name: index.select(srcs) for name, srcs in doc["sources"].items()}
    indices = [r.index for refs in by_split.values() for r in refs]
    assert sorted(indices) == list(range(10))  # every sample in exactly one split
    for name, refs in by_split.items():
        assert doc["n_samples"][name] == len(refs)
        for other, orefs in by_split.items():
            if other != name:
                assert not {r.source for r in refs} & {r.source for r in orefs}
    assert make_split(data, val=0.2, test=0.2, seed=7, out=tmp_path / "again.json").read_text() \
        == path.read_text()
    assert not list(data.glob("*.tmp-*"))
    # A split made for another dataset is refused.
    other = make_tiny_dataset(tmp_path / "other", n_sources=4, per_source=1, seq_len=3)
    with pytest.raises(BlursynthError, match="another dataset"):
        load_split(path, other)
    (tmp_path / "bad.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(BlursynthError, match="format"):
        load_split(tmp_path / "bad.json")
