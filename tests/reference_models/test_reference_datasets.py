"""Datasets over shards (the tiny synthetic dataset they read is in tests/helpers/handmade.py).

The tiny dataset: smooth random textures (one per source) translated by an
integer velocity per frame; the blurred frame is the mean of the texture at
2k+1 consecutive one-pixel steps along the motion (a box blur along the motion
direction), the sharp frame is the middle step. A network can learn to undo it.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from blursynth.errors import BlursynthError
from blursynth.dataset import Sample, iter_samples
from tests.helpers.handmade import SIZE, make_tiny_dataset
from reference_models.data import (
    LatentDataset, PairDataset, ShardIndex, StreamSampler, VideoClipDataset, seed_worker,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="module")
def tiny_latent(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("tinylat") / "data", n_sources=2, per_source=2,
                             seq_len=2, latent=3)


def _full_samples(root: Path) -> dict[int, Sample]:
    return {int(s.meta["index"]): s for s in iter_samples(root)}


def _locate(crop: np.ndarray, full: np.ndarray):
    """Brute force: the (y, x, hflip, vflip) at which ``crop`` [T,h,w,3] was cut from ``full`` [T,H,W,3]."""
    h, w = crop.shape[-3:-1]
    found = []
    for hf in (False, True):
        for vf in (False, True):
            for y in range(full.shape[-3] - h + 1):
                for x in range(full.shape[-2] - w + 1):
                    c = full[..., y:y + h, x:x + w, :]
                    if hf:
                        c = c[..., :, ::-1, :]
                    if vf:
                        c = c[..., ::-1, :, :]
                    if np.array_equal(c, crop):
                        found.append((y, x, hf, vf))
    return found


# ------------------------------------------------------------------ tests
def test_index_reads_manifest_and_meta(tiny):
    index = ShardIndex(tiny)
    assert len(index) == 18
    assert (index.seq_len, index.height, index.width, index.n_latent) == (5, SIZE, SIZE, 0)
    assert [r.index for r in index.refs] == list(range(18))
    assert index.sources == [f"tex-{k}" for k in range(6)]
    assert {r.source for r in index.select(["tex-1"])} == {"tex-1"}
    assert len(index.select(["tex-1", "tex-4"])) == 6


def test_video_clip_whole_sequence_matches_shards(tiny):
    full = _full_samples(tiny)
    ds = VideoClipDataset(ShardIndex(tiny))
    assert len(ds) == 18
    item = ds[7]
    assert item["blur"].dtype == torch.uint8 and item["blur"].shape == (5, 3, SIZE, SIZE)
    ref = full[item["index"]]
    np.testing.assert_array_equal(item["blur"].permute(0, 2, 3, 1).numpy(), ref.arrays["blur"])
    np.testing.assert_array_equal(item["sharp"].permute(0, 2, 3, 1).numpy(), ref.arrays["sharp"])


def test_training_windows_start_anywhere_in_the_sequence(tiny):
    """Kim et al. train on 13 random consecutive frames: every start occurs, so end frames are targets."""
    ds = VideoClipDataset(ShardIndex(tiny), clip_len=3, augment=True, seed=0)
    assert len(ds) == 18  # one item per sample
    full = _full_samples(tiny)
    starts = set()
    for draw in range(40):
        item = ds[(4, draw)]
        assert item["index"] == 4 and (item["first"], item["count"]) == (0, 3)
        blur = item["blur"].permute(0, 2, 3, 1).numpy()
        matches = [s for s in range(3) for flips in [(False, False), (True, False), (False, True), (True, True)]
                   if np.array_equal(_cut(full[4].arrays["blur"][s:s + 3], (0, 0, *flips), p=SIZE), blur)]
        assert len(matches) >= 1
        starts.add(item["start"])
    assert starts == {0, 1, 2}
    plain = ds[4]  # no augmentation: the window centred on the sample
    assert plain["start"] == 1


def test_random_crop_is_the_same_place_in_every_frame(tiny):
    full = _full_samples(tiny)
    ds = VideoClipDataset(ShardIndex(tiny), clip_len=3, patch=16, augment=True, seed=3)
    flips = set()
    for draw in range(6):
        item = ds[(draw * 7 % len(ds), draw)]
        ref = full[item["index"]]
        t = slice(item["start"], item["start"] + 3)
        blur = item["blur"].permute(0, 2, 3, 1).numpy()
        sharp = item["sharp"].permute(0, 2, 3, 1).numpy()
        where = _locate(blur, ref.arrays["blur"][t])  # all 3 frames at once: one place for all
        assert where, "the crop is not one window of the sample's frames"
        assert any(np.array_equal(_cut(ref.arrays["sharp"][t], w), sharp) for w in where)
        flips.update((w[2], w[3]) for w in where)
    assert len(flips) > 1  # flips happen


def _cut(full, where, p=16):
    y, x, hf, vf = where
    c = full[..., y:y + p, x:x + p, :]
    if hf:
        c = c[..., :, ::-1, :]
    if vf:
        c = c[..., ::-1, :, :]
    return c


def test_augmentation_depends_on_seed_and_draw_only(tiny):
    index = ShardIndex(tiny)
    a = VideoClipDataset(index, clip_len=3, patch=16, augment=True, seed=1)
    b = VideoClipDataset(index, clip_len=3, patch=16, augment=True, seed=1)
    c = VideoClipDataset(index, clip_len=3, patch=16, augment=True, seed=2)
    assert torch.equal(a[(5, 11)]["blur"], b[(5, 11)]["blur"])
    assert not all(torch.equal(a[(5, d)]["blur"], c[(5, d)]["blur"]) for d in range(4))
    # No augmentation: a centre crop, no flip.
    plain = VideoClipDataset(index, clip_len=3, patch=16)
    y = x = (SIZE - 16) // 2
    np.testing.assert_array_equal(plain[(5, 11)]["blur"].numpy(), plain[5]["blur"].numpy())
    np.testing.assert_array_equal(plain[5]["blur"].permute(0, 2, 3, 1).numpy(),
                                  _full_samples(tiny)[5].arrays["blur"][1:4, y:y + 16, x:x + 16])


def test_handles_open_lazily_and_never_cross_a_pickle(tiny):
    ds = VideoClipDataset(ShardIndex(tiny), clip_len=3)
    assert ds.index.samples.files.opened == []
    ds[0]
    assert len(ds.index.samples.files.opened) == 1
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.index.samples.files.opened == [] and clone.index.samples.files._pid is None
    assert torch.equal(clone[0]["blur"], ds[0]["blur"])
    ds.close()
    assert ds.index.samples.files.opened == []


def _batches(ds, workers, n=3, batch=4, seed=5):
    loader = DataLoader(ds, batch_size=batch, sampler=StreamSampler(len(ds), seed), num_workers=workers,
                        worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(seed))
    it = iter(loader)
    return [next(it) for _ in range(n)]


def test_batches_do_not_depend_on_the_number_of_workers(tiny):
    ds = VideoClipDataset(ShardIndex(tiny), clip_len=3, patch=16, augment=True, seed=0)
    ds[0]  # a handle open in the parent must not leak into forked workers
    one, two = _batches(ds, 0), _batches(ds, 2)
    for a, b in zip(one, two):
        assert torch.equal(a["blur"], b["blur"]) and torch.equal(a["index"], b["index"])


def test_read_only_dataset(tiny, tmp_path):
    import shutil
    ro = tmp_path / "ro"
    shutil.copytree(tiny, ro)
    for p in ro.iterdir():
        p.chmod(0o444)
    ro.chmod(0o555)
    try:
        ds = VideoClipDataset(ShardIndex(ro), clip_len=3)
        assert ds[2]["blur"].shape == (3, 3, SIZE, SIZE)
    finally:
        ro.chmod(0o755)


def test_stream_sampler_epochs_and_ranks():
    n = 7
    single = StreamSampler(n, seed=4)
    it = iter(single)
    stream = [next(it) for _ in range(3 * n)]
    assert [p for _, p in stream] == list(range(3 * n))
    for e in range(3):  # every epoch visits every item once
        assert sorted(i for i, _ in stream[e * n:(e + 1) * n]) == list(range(n))
    ranks = []
    for r in range(2):
        it = iter(StreamSampler(n, seed=4, start=2, rank=r, world=2))
        ranks.append([next(it) for _ in range(4)])
    assert sorted(ranks[0] + ranks[1], key=lambda k: k[1]) == stream[2:10]
    with pytest.raises(ValueError, match="rank"):
        StreamSampler(n, 0, rank=2, world=2)


def test_latent_and_pair_datasets(tiny_latent):
    index = ShardIndex(tiny_latent)
    assert index.n_latent == 3
    full = _full_samples(tiny_latent)
    lat = LatentDataset(index, patch=16)
    assert len(lat) == 4 * 2
    item = lat[3]  # sample 1, frame 1
    assert item["blur"].shape == (3, 16, 16) and item["latent"].shape == (3, 3, 16, 16)
    y = x = (SIZE - 16) // 2
    np.testing.assert_array_equal(item["latent"].permute(0, 2, 3, 1).numpy(),
                                  full[1].arrays["latent"][1, :, y:y + 16, x:x + 16])
    aug = LatentDataset(index, patch=16, augment=True, seed=0)[(3, 9)]
    where = _locate(aug["blur"].permute(1, 2, 0).numpy()[None], full[1].arrays["blur"][1][None])
    assert any(np.array_equal(_cut(full[1].arrays["latent"][1], w), aug["latent"].permute(0, 2, 3, 1).numpy())
               for w in where)
    pair = PairDataset(index)
    assert len(pair) == 8 and pair[0]["sharp"].shape == (3, SIZE, SIZE)


def test_bad_requests_are_user_errors(tiny, tmp_path):
    index = ShardIndex(tiny)
    with pytest.raises(BlursynthError, match="--patch 64"):
        VideoClipDataset(index, patch=64)
    with pytest.raises(BlursynthError, match="--clip-len 9"):
        VideoClipDataset(index, clip_len=9)
    with pytest.raises(BlursynthError, match="no latent"):
        LatentDataset(index)
    with pytest.raises(BlursynthError, match="not a blursynth dataset"):
        ShardIndex(tmp_path)
