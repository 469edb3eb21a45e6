"""STRCNN+DTB against Kim et al. 2017: the loss of Eq. 4, flips, training windows, bf16, recipes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from reference_models import create_model
from reference_models.data import ShardIndex, VideoClipDataset
from reference_models.dtb import DTBTask
from reference_models.heldout import sample_across_sources
from reference_models.train import TrainConfig, resolve_defaults
from tests.helpers.handmade import make_tiny_dataset

REPO = Path(__file__).resolve().parents[2]
TINY = {"blocks": 1, "width": 16, "feature_channels": 8}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("dtbpaper") / "data", n_sources=4, per_source=2)


def test_loss_is_eq4_frames_summed_pixels_averaged_plus_weight_decay():
    """Eq. 4: Σ_n ||L_n − L_n^gt||² / M + λ Σ ||W||², recomputed here in float64."""
    torch.manual_seed(0)
    model = create_model("dtb", **TINY)
    blur = torch.randint(0, 256, (2, 7, 3, 12, 10), dtype=torch.uint8)
    sharp = torch.randint(0, 256, (2, 7, 3, 12, 10), dtype=torch.uint8)
    config = resolve_defaults(TrainConfig(data="d", out="o", weight_reg=1e-3), DTBTask())
    loss, terms = DTBTask().loss(model, {"blur": blur, "sharp": sharp}, config)

    with torch.no_grad():
        out = model(blur.float() / 255).double().numpy()  # the 5 frames with both neighbours
    target = sharp.double().numpy()[:, 1:6] / 255
    per_frame = ((out - target) ** 2).reshape(2, 5, -1).mean(-1)  # / M, M = 3·H·W values
    data = per_frame.sum(1).mean()  # summed over n, averaged over the batch
    weights = sum(float((p.detach().double() ** 2).sum()) for name, p in model.named_parameters()
                  if name.endswith("weight"))  # convolution weights only: no biases, no β
    assert terms["data"] == pytest.approx(data, rel=1e-5)
    assert terms["weight_l2"] == pytest.approx(weights, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(data + 1e-3 * weights, rel=1e-5)
    # The old normalization (mean over frames too) was smaller by the number of frames scored,
    # which made λ that many times stronger relative to the data term.
    assert terms["data"] / terms["mse"] == pytest.approx(5, rel=1e-5)


def _flipped(item, full_blur) -> set[tuple[bool, bool]]:
    """Which flips of the sample's window reproduce the item (whole frames, no crop)."""
    a, clip = item["start"], item["blur"].permute(0, 2, 3, 1).numpy()
    window = full_blur[a:a + clip.shape[0]]
    found = set()
    for hf in (False, True):
        for vf in (False, True):
            w = window[:, :, ::-1] if hf else window
            w = w[:, ::-1] if vf else w
            if np.array_equal(w, clip):
                found.add((hf, vf))
    return found


@pytest.mark.parametrize("flip", [True, False])
def test_flip_option_turns_flips_on_and_off(tiny, flip):
    from blursynth.dataset import iter_samples
    full = {int(s.meta["index"]): s.arrays["blur"] for s in iter_samples(tiny)}
    task = DTBTask()
    model = create_model("dtb", **TINY)
    ds = task.dataset(ShardIndex(tiny), None, model=model, clip_len=3, patch=None, augment=True,
                      flip=flip, seed=0)
    seen = set()
    for draw in range(16):
        item = ds[(draw % len(ds), draw)]
        found = _flipped(item, full[item["index"]])
        assert found, "the item is no flip of its window"
        seen |= found
    if flip:
        assert {(True, False), (False, True)} <= seen or (True, True) in seen
    else:
        assert seen == {(False, False)}


def test_no_flip_reaches_the_training_data(tiny, tmp_path):
    from reference_models.runtime import Distributed
    from reference_models.train import Trainer
    config = TrainConfig(data=str(tiny), out=str(tmp_path / "run"), model_args=TINY, steps=1, batch=2,
                         patch=16, clip_len=3, workers=0, flip=False, quiet=True)
    with Distributed("cpu") as env:
        assert Trainer(config, env).dataset.flip is False


def test_bf16_keeps_blend_and_state_in_float32():
    """Under bf16 autocast, w_n, h̃_n and F_n are float32 and h̃_n = w h_n + (1 − w) h̃_{n−1} exactly."""
    torch.manual_seed(0)
    model = create_model("dtb", **TINY).eval()
    clip = torch.rand(1, 4, 3, 12, 12)
    captured = {}
    model.blend.register_forward_hook(lambda m, i, o: captured.update(inp=i[0], logits=o))
    enc = model.encoder.register_forward_hook(lambda m, i, o: captured.update(h=o))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        _, s1 = model.step(clip[:, 0:3])
        _, s2 = model.step(clip[:, 1:4], s1)
    enc.remove()
    assert s1.hidden.dtype == s1.feature.dtype == s2.hidden.dtype == s2.feature.dtype == torch.float32
    h = captured["h"].double()
    w = torch.clamp(torch.tanh(captured["logits"].double()).abs() + torch.sigmoid(model.beta_logit.double()),
                    max=1.0)
    expected = w * h + (1 - w) * s1.hidden.double()
    # float32 arithmetic: bf16 (8 significant bits) would be off by ~1e-3 here.
    torch.testing.assert_close(s2.hidden.double(), expected, rtol=0, atol=1e-6)


def test_validate_draws_test_samples_across_sources(tiny):
    refs = ShardIndex(tiny).refs  # 4 sources × 2 samples, in index order
    first = sample_across_sources(refs, 4, seed=0)
    assert len({r.source for r in first}) == 4  # refs[:4] would hold only 2 sources
    assert [r.index for r in first] == sorted(r.index for r in first)
    assert sample_across_sources(refs, 4, seed=0) == first
    assert any(sample_across_sources(refs, 4, seed=s) != first for s in range(1, 6))
    assert sample_across_sources(refs, None, 0) == list(refs) == sample_across_sources(refs, 99, 0)


def test_eval_windows_take_their_context_from_the_run_only(tiny):
    """Tiny samples are not consecutive exposures: each is its own run, so no context crosses samples."""
    index = ShardIndex(tiny)
    assert len(index.runs) == len(index)
    ds = VideoClipDataset(index, context=1)
    item = ds[3]
    assert (item["first"], item["count"], item["blur"].shape[0]) == (0, 5, 5)


def test_recipes_name_files_that_exist_and_cite_eq1_in_sec3():
    for recipe in (REPO / "recipes").glob("*.toml"):
        for name in re.findall(r"recipes/([\w.-]+\.toml)", recipe.read_text()):
            assert (REPO / "recipes" / name).exists(), f"{recipe.name} names recipes/{name}"
    text = (REPO / "recipes" / "kim2017_dtb.toml").read_text()
    assert "Sec. 3" in text and "Sec. 5.1, Eq. 1" not in text


def test_docs_state_the_deviations():
    doc = (REPO / "docs" / "models.md").read_text()
    section = doc[doc.index("## Deviations from the paper"):]
    for words in ("normaliz", "biases", "linear", "centre", "flips"):
        assert words in section.lower(), words
