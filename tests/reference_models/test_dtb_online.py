"""DTB is evaluated online (issue 20, item 5): the recurrent state carries across the consecutive
exposures of a run, through samples that are not scored, as the paper deblurs a video sequentially."""

import numpy as np
import pytest
import torch

from tests.helpers.handmade import make_dataset
from reference_models import create_model
from reference_models.data import ShardIndex
from reference_models.evaluate import evaluate_model

L, H, W, N = 2, 16, 20, 5


def _frames(seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"source": "clip", "start": k * L * 7, "T": 7, "tau": 7,
             "arrays": {n: rng.integers(0, 256, (L, H, W, 3), dtype=np.uint8) for n in ("blur", "sharp")}}
            for k in range(N)]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return min(100.0, 10 * np.log10(255.0 ** 2 / mse))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = create_model("dtb", blocks=1, width=8, feature_channels=4).eval()
    with torch.no_grad():  # a model far from the identity, so that the state matters
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m


def _scores(root, model, picks):
    index = ShardIndex(root)
    refs = [index.refs[i] for i in picks]
    dataset = model.task.dataset(index, refs, model=model, clip_len=None, patch=None, augment=False,
                                 flip=False, seed=0)
    return {r["index"]: r["psnr_output"] for r in evaluate_model(model, dataset)["per_item"]}


def test_scored_samples_equal_the_whole_run_deblurred_in_one_pass(tmp_path, model):
    samples = _frames(1)
    root = make_dataset(tmp_path / "d", [samples])
    assert len(ShardIndex(root).runs) == 1  # one run of N·L consecutive exposures
    blur = np.concatenate([s["arrays"]["blur"] for s in samples])
    sharp = np.concatenate([s["arrays"]["sharp"] for s in samples])
    with torch.no_grad():  # the oracle: the whole video, online from its first frame
        clip = torch.from_numpy(np.moveaxis(blur, -1, 1)).float().div(255).unsqueeze(0)
        out = model(clip, pad=True)[0]
    out8 = np.moveaxis(out.clamp(0, 1).mul(255).round().byte().numpy(), 1, -1)
    scores = _scores(root, model, [3, 1])  # unscored samples 0 and 2 are stepped through
    for k in (1, 3):
        own = slice(k * L, (k + 1) * L)
        expected = np.mean([_psnr(out8[t], sharp[t]) for t in range(own.start, own.stop)])
        assert scores[k] == pytest.approx(expected, abs=1e-3)


def test_a_changed_earlier_frame_changes_a_later_output(tmp_path, model):
    a = _frames(2)
    b = _frames(2)
    b[0]["arrays"]["blur"] = 255 - b[0]["arrays"]["blur"]  # only the first sample's blurred frames differ
    sa = _scores(make_dataset(tmp_path / "a", [a]), model, [3])
    sb = _scores(make_dataset(tmp_path / "b", [b]), model, [3])
    # sample 3 (frames 6, 7) is 5 frames past the change: only the recurrent state carries it there
    assert abs(sa[3] - sb[3]) > 1e-3
