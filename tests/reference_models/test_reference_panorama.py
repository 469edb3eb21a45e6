"""The panorama pipeline's sequence mode as training data (real content), and its latent frames."""

from __future__ import annotations

import json

from tests.helpers import run_ok
from reference_models.data import LatentDataset, ShardIndex, VideoClipDataset


def test_panorama_sequences_train_and_evaluate(tmp_path):
    data = tmp_path / "pano"
    run_ok("panorama", "--n", 6, "--size", "48x40", "--seq-len", 4, "--latent", 3, "--out", data,
         "--workers", 1, "-q")
    index = ShardIndex(data)
    assert (index.seq_len, index.height, index.width, index.n_latent) == (4, 40, 48, 3)
    clip = VideoClipDataset(index, clip_len=3, patch=32, augment=True)[(0, 0)]
    assert clip["blur"].shape == (3, 3, 32, 32)
    latent = LatentDataset(index, patch=32, augment=True)[(0, 0)]
    assert latent["latent"].shape == (3, 3, 32, 32)

    run = tmp_path / "run"
    run_ok("train-reference", "dtb", "--data", data, "--out", run, "--steps", 3, "--batch", 2, "--patch", 32,
         "--model-arg", "blocks=1", "--model-arg", "width=40", "--workers", 0, "-q")
    # No split in the dataset: the run made one by source and eval-reference scores its test split.
    split = json.loads((run / "split.json").read_text())
    out = json.loads(run_ok("eval-reference", run, "--data", data, "--json", "-q").stdout)
    assert out["n_samples"] == split["n_samples"]["test"] > 0 and out["n_frames"] == 4 * out["n_samples"]
    assert out["psnr"]["input"] > 10
