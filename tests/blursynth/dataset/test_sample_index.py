"""SampleIndex, the one reader: references in index order, frames by reference, and runs() against an oracle.

The dataset is written with the project's writer (:func:`blursynth.dataset.write_dataset`) from metas
chosen here, so every expectation below is computed from those metas, not from the reader.
"""

from __future__ import annotations

import numpy as np
import pytest

from blursynth.dataset import Dataset, Sample, SampleIndex, iter_samples, write_dataset
from blursynth.errors import BlursynthError

L, H, W = 2, 4, 6
CONFIG = {"response": "gamma:2.2", "seq_len": L}
PLACED = ("source", "repeat", "tau", "T", "start")
# index: (source, repeat, tau, T, start). a's draw (repeat 0, tau 3, T 4) runs 0 -> 8, then leaves a gap
# (16 missing) before 24; sample 4 starts at 16 under another tau, so it continues nothing and nothing
# continues it; b's run (2 -> 5) is not adjacent in index order; 6 is another repeat of a.
DRAWS = {0: ("a", 0, 3, 4, 0), 1: ("a", 0, 3, 4, 8), 2: ("b", 0, 5, 5, 0), 3: ("a", 0, 3, 4, 24),
         4: ("a", 0, 5, 4, 16), 5: ("b", 0, 5, 5, 10), 6: ("a", 1, 3, 4, 8)}
UNPLACED = {7: "c", 8: "c"}  # no start / T (as panorama samples): a run each
# Shards hold samples out of index order: the reader orders them.
SHARDS = [[3, 0, 5, 1], [2, 4, 6], [8, 7]]


def _meta(i: int) -> dict:
    if i in UNPLACED:
        return {"index": i, "source": UNPLACED[i]}
    return {"index": i, **dict(zip(PLACED, DRAWS[i]))}


def _sample(i: int) -> Sample:
    blur = np.full((L, H, W, 3), i, np.uint8)
    blur[1] += 100  # frame 1 differs from frame 0
    return Sample({"blur": blur, "sharp": np.full((L, H, W, 3), 200 - i, np.uint8)}, _meta(i))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("index") / "ds"
    write_dataset(out, "highspeed", CONFIG, [len(s) for s in SHARDS], (_sample(i) for s in SHARDS for i in s))
    return out


def oracle_runs(ids) -> list[list[int]]:
    """Chains of ``follows`` among ``ids``: b follows a when both are placed, share source, repeat,
    tau and T, and b starts L*T frames after a. Runs are listed by their first index."""
    ids = sorted(ids)

    def follows(b: int, a: int) -> bool:
        if a in UNPLACED or b in UNPLACED:
            return False
        (sa, ra, ta, pa, xa), (sb, rb, tb, pb, xb) = DRAWS[a], DRAWS[b]
        return (sa, ra, ta, pa) == (sb, rb, tb, pb) and xb == xa + L * pa

    successor = {a: b for a in ids for b in ids if follows(b, a)}
    runs = []
    for i in ids:
        if i in successor.values():
            continue
        run = [i]
        while run[-1] in successor:
            run.append(successor[run[-1]])
        runs.append(run)
    return sorted(runs, key=lambda run: run[0])


def test_references_are_in_index_order_and_point_at_their_rows(dataset):
    index = SampleIndex(dataset)
    where = {i: (f"shard-{k:05d}.h5", row) for k, shard in enumerate(SHARDS) for row, i in enumerate(shard)}
    assert [r.index for r in index.refs] == sorted(where)
    assert [(r.file, r.row) for r in index.refs] == [where[i] for i in sorted(where)]
    assert [r.source for r in index.refs] == [_meta(i)["source"] for i in sorted(where)]
    assert {r.seq_len for r in index.refs} == {L}
    assert index.sources == ["a", "b", "c"] and len(index) == 9
    for ref in index.refs:
        assert {k: v.item() if hasattr(v, "item") else v for k, v in index.meta(ref).items()} == _meta(ref.index)
        np.testing.assert_array_equal(index.read(ref, "blur"), _sample(ref.index).arrays["blur"])
        np.testing.assert_array_equal(index.arrays(ref)["sharp"], _sample(ref.index).arrays["sharp"])
        crop = index.read(ref, "blur", (1, slice(1, 3), slice(2, 5)))  # frame 1, rows 1-2, columns 2-4
        np.testing.assert_array_equal(crop, np.full((2, 3, 3), ref.index + 100, np.uint8))
    assert [r.file for r in index.select(["b"])] == ["shard-00001.h5", "shard-00000.h5"]  # indices 2, 5
    index.close()


def test_every_consumer_sees_the_index_order(dataset):
    order = sorted(i for s in SHARDS for i in s)
    assert [int(s.meta["index"]) for s in iter_samples(dataset)] == order
    with Dataset(dataset) as data:
        assert [int(data[i]["index"]) for i in range(len(data))] == order


def test_runs_match_the_oracle_with_a_tau_change_a_gap_and_interleaved_indices(dataset):
    index = SampleIndex(dataset)
    runs = index.runs()
    assert [[r.index for r in run] for run in runs] == oracle_runs(range(9)) == \
        [[0, 1], [2, 5], [3], [4], [6], [7], [8]]
    for number, run in enumerate(runs):  # every reference knows its run and its first frame in it
        assert [(r.run, r.offset) for r in run] == [(number, k * L) for k in range(len(run))]
    assert {(r.run, r.offset) for r in index.refs} == {(r.run, r.offset) for run in runs for r in run}


@pytest.mark.parametrize("left_out", [[1], [0], [5], [2, 3]])
def test_runs_of_a_selection_break_where_a_sample_is_left_out(dataset, left_out):
    index = SampleIndex(dataset)
    kept = [r for r in index.refs if r.index not in left_out]
    assert [[r.index for r in run] for run in index.runs(kept)] == oracle_runs(r.index for r in kept)


def test_training_and_export_chain_by_the_same_runs(dataset, tmp_path):
    from blursynth.export import export
    from reference_models.data import ShardIndex

    assert [[r.index for r in run] for run in ShardIndex(dataset).runs] == oracle_runs(range(9))
    state = export(dataset, "gopro", tmp_path / "gopro", workers=1, quiet=True)
    assert [clip["samples"] for clip in state["clips"]] == oracle_runs(range(9))


def test_a_shard_without_sources_is_one_line_naming_it(tmp_path):
    out = tmp_path / "nosource"
    write_dataset(out, "highspeed", CONFIG, [1], [Sample(_sample(0).arrays, {"index": 0})])
    with pytest.raises(BlursynthError, match=r"shard-00000\.h5: meta/source is missing"):
        SampleIndex(out)
