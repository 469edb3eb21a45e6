"""Blur2Video (Argaw et al. 2021): shapes, gradients, warps, losses, order rule, data, training."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from blursynth.errors import BlursynthError
from tests.helpers import run_ok
from reference_models import create_model, list_models
from reference_models.blur2video import Blur2Video, Blur2VideoTask
from reference_models.blur2video_blocks import LocalWarp, STN, affine_displacement, pyramid, warp
from reference_models.blur2video_losses import (
    better_order, combined_loss, penalty_loss, photometric_loss, transformation_consistency_loss,
)
from reference_models.checkpoint import model_from_checkpoint
from reference_models.data import LatentDataset, PairDataset, ShardIndex, to_float
from reference_models.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[2]

VARIANTS = [n for n in list_models() if n.startswith("blur2video")]
TINY = {"width_mult": 0.25}
FLAGS = {"blur2video": (True, True), "blur2video_ftn_stn": (False, False),
         "blur2video_ftn_stn_lw": (True, False), "blur2video_ftn_stn_itn": (False, True)}


def _tiny(name: str = "blur2video", **kw) -> Blur2Video:
    torch.manual_seed(0)
    return create_model(name, **TINY, **kw)


# ------------------------------------------------------------------ datasets
@pytest.fixture(scope="module")
def pano(tmp_path_factory) -> Path:
    """Default panorama data (K = 3) from the two built-in panoramas: two sources."""
    data = tmp_path_factory.mktemp("b2v") / "pano"
    run_ok("panorama", "--n", 6, "--size", "24x32", "--out", data, "--workers", 1, "-q")
    return data


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("b2v") / "clips"
    for seed in range(2):
        run_ok("sample", root / f"c{seed}", "--frames", 22, "--size", "32x24", "--seed", seed)
    return root


@pytest.fixture(scope="module")
def hs7(clips, tmp_path_factory) -> Path:
    """highspeed --latent 7 on the built-in synthetic clip."""
    data = tmp_path_factory.mktemp("b2v") / "hs7"
    run_ok("highspeed", "--src", clips, "--tau", 7, "--T", 7, "--latent", 7, "--out", data, "--workers", 1, "-q")
    return data


@pytest.fixture(scope="module")
def pairs(clips, tmp_path_factory) -> Path:
    """A plain pair dataset (blurred frame + sharp frame, no latent frames)."""
    data = tmp_path_factory.mktemp("b2v") / "pairs"
    run_ok("highspeed", "--src", clips, "--tau", 5, "--T", 5, "--out", data, "--workers", 1, "-q")
    return data


# -------------------------------------------------------------------- model
def test_registry_holds_the_ablation_variants():
    assert set(FLAGS) <= set(VARIANTS)
    for name, (lw, itn) in FLAGS.items():
        model = _tiny(name)
        assert (model.local_warp, model.image_transformer) == (lw, itn)
        branch = model.branches[0]
        assert hasattr(branch, "lw") == lw and hasattr(branch, "itn") == itn
        assert type(model).task.learns_from == "latent"
    with pytest.raises(ValueError, match="fixed by this variant"):
        create_model("blur2video_ftn_stn", local_warp=True)
    with pytest.raises(ValueError, match="odd"):
        create_model("blur2video", frames=4)
    with pytest.raises(ValueError, match="loss"):
        create_model("blur2video", loss="pml+pt")


SHAPE_CASES = [("blur2video", k, size) for k in (1, 3, 7) for size in ((16, 16), (17, 23))] + \
    [(name, 3, (17, 23)) for name in VARIANTS if name != "blur2video"]


@pytest.mark.parametrize("name,frames,size", SHAPE_CASES)
def test_output_shapes_odd_and_even(name, frames, size):
    model = _tiny(name, frames=frames)
    h, w = size
    blur = torch.rand(2, 3, h, w)
    assert model(blur).shape == (2, frames, 3, h, w)
    out = model(blur, details=True)
    sizes = [(h, w)] + [(math.ceil(h / 2 ** l), math.ceil(w / 2 ** l)) for l in range(5)]
    assert [tuple(p.shape[-2:]) for p in out["pyramid"]] == sizes
    assert all(p.shape[:3] == (2, frames, 3) for p in out["pyramid"])
    if frames == 1:
        assert out["theta"] is None and out["theta_itn"] is None
    else:
        assert out["theta"].shape == (2, frames - 1, 5, 6)
        assert (out["theta_itn"] is not None) == model.image_transformer


@pytest.mark.parametrize("name", VARIANTS)
def test_every_parameter_gets_a_gradient_and_no_nans(name):
    model = _tiny(name, frames=3)
    batch = {"blur": torch.randint(0, 256, (2, 3, 20, 18), dtype=torch.uint8),
             "latent": torch.randint(0, 256, (2, 3, 3, 20, 18), dtype=torch.uint8)}
    loss, terms = model.task.loss(model, batch, None)
    assert torch.isfinite(loss) and set(terms) == {"pml", "tcl", "pt"}
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} gets a zero gradient"


def test_untrained_model_outputs_about_the_blurred_image():
    model = _tiny(frames=3).eval()
    blur = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        out = model(blur)
    assert (out - blur.unsqueeze(1)).abs().mean() < 0.05


def test_bf16_autocast_on_cpu():
    model = _tiny(frames=3)
    batch = {"blur": torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8),
             "latent": torch.randint(0, 256, (1, 3, 3, 32, 32), dtype=torch.uint8)}
    with torch.no_grad():
        ref = model(to_float(batch["blur"]))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(to_float(batch["blur"]))
    assert (low.float() - ref).abs().max() < 0.05
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = model.task.loss(model, batch, None)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


# ------------------------------------------------------------------- warping
def test_identity_stn_returns_its_input_exactly():
    x = torch.rand(2, 5, 13, 21)
    dx, dy = affine_displacement(torch.zeros(2, 6), 13, 21)
    assert torch.equal(warp(x, dx, dy), x)
    stn = STN(5)
    with torch.no_grad():
        stn.theta.weight.zero_()
    out, theta = stn(x)
    assert torch.equal(theta, torch.zeros(2, 6)) and torch.equal(out, x)


def test_zero_flow_local_warp_returns_its_input():
    x = torch.rand(2, 4, 11, 9)
    assert torch.equal(warp(x, torch.zeros(2, 11, 9), torch.zeros(2, 11, 9)), x)
    lw = LocalWarp(4)
    with torch.no_grad():
        lw.flow[-1].weight.zero_()
    assert torch.equal(lw(x), x)


def test_warp_is_bilinear_with_clamped_borders():
    x = torch.rand(1, 2, 6, 7)
    dx = torch.full((1, 6, 7), 0.25)
    dy = torch.full((1, 6, 7), 1.5)
    out = warp(x, dx, dy)
    ref = torch.empty_like(x)
    for y in range(6):
        for xx in range(7):
            px, py = min(xx + 0.25, 6.0), min(y + 1.5, 5.0)
            x0, y0 = int(px), int(py)
            x1, y1 = min(x0 + 1, 6), min(y0 + 1, 5)
            ax, ay = px - x0, py - y0
            ref[0, :, y, xx] = ((1 - ax) * (1 - ay) * x[0, :, y0, x0] + ax * (1 - ay) * x[0, :, y0, x1]
                                + (1 - ax) * ay * x[0, :, y1, x0] + ax * ay * x[0, :, y1, x1])
    torch.testing.assert_close(out, ref)


def test_affine_displacement_is_the_matrix_in_normalized_coordinates():
    h, w = 5, 9
    theta = torch.tensor([[0.1, -0.2, 0.3, 0.05, -0.1, -0.25]])
    dx, dy = affine_displacement(theta, h, w)
    a = torch.tensor([[1.1, -0.2], [0.05, 0.9]])
    t = torch.tensor([0.3, -0.25])
    for y in range(h):
        for x in range(w):
            uv = torch.tensor([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1])
            src = a @ uv + t
            want = ((src[0] + 1) * (w - 1) / 2 - x, (src[1] + 1) * (h - 1) / 2 - y)
            torch.testing.assert_close((dx[0, y, x], dy[0, y, x]), (want[0], want[1]))
    # A translation of t_x = 2/(w−1) is one pixel: the image shifted left by one, border repeated.
    img = torch.rand(1, 3, h, w)
    shift = torch.tensor([[0.0, 0.0, 2 / (w - 1), 0.0, 0.0, 0.0]])
    out = warp(img, *affine_displacement(shift, h, w))
    torch.testing.assert_close(out[..., :-1], img[..., 1:])
    torch.testing.assert_close(out[..., -1], img[..., -1])


# -------------------------------------------------------------------- losses
def _halve(t: torch.Tensor) -> torch.Tensor:
    """Mean of each 2×2 block (even sizes), written out."""
    return (t[..., 0::2, 0::2] + t[..., 1::2, 0::2] + t[..., 0::2, 1::2] + t[..., 1::2, 1::2]) / 4


def test_pyramid_halves_by_2x2_means():
    x = torch.rand(2, 3, 3, 32, 48)
    levels = pyramid(x, 4)
    assert levels[0] is not None and torch.equal(levels[0], x)
    ref = x
    for lv in levels[1:]:
        ref = _halve(ref)
        torch.testing.assert_close(lv, ref)
    assert [tuple(t.shape[-2:]) for t in pyramid(torch.rand(1, 3, 17, 9), 5)] == \
        [(17, 9), (9, 5), (5, 3), (3, 2), (2, 1)]


def test_photometric_loss_eq3():
    torch.manual_seed(1)
    target = torch.rand(2, 3, 3, 32, 32)
    sizes = [32, 32, 16, 8, 4, 2]
    pred = [torch.rand(2, 3, 3, s, s) for s in sizes]
    weights = [1.0, 0.7, 0.5, 0.25, 0.125, 0.0625]
    want, gt = 0.0, target
    for s, (p, w) in enumerate(zip(pred, weights)):
        if s >= 2:
            gt = _halve(gt)
        n = p.numel()
        want += w * float(sum(abs(a - b) for a, b in zip(p.flatten().tolist(), gt.flatten().tolist()))) / n
    assert float(photometric_loss(pred, target, weights)) == pytest.approx(want, rel=1e-5)


def test_transformation_consistency_loss_eq4():
    theta = torch.randn(2, 3, 5, 6)
    total, count = 0.0, 0
    for b in range(2):
        for f in range(3):
            for l in range(4):
                for p in range(6):
                    total += abs(float(theta[b, f, l + 1, p]) - float(theta[b, f, l, p]))
                    count += 1
    assert float(transformation_consistency_loss(theta)) == pytest.approx(total / count, rel=1e-5)
    same = torch.randn(2, 3, 1, 6).expand(2, 3, 5, 6)
    assert float(transformation_consistency_loss(same)) == 0.0


@pytest.mark.parametrize("k", [3, 7])
def test_penalty_loss_eq5(k):
    pred, target = torch.rand(2, k, 3, 6, 5), torch.rand(2, k, 3, 6, 5)
    sads = [float((pred[:, i] - target[:, k - 1 - i]).abs().mean()) for i in range(k) if i != k // 2]
    assert float(penalty_loss(pred, target)) == pytest.approx(-sum(sads) / len(sads), rel=1e-5)
    assert float(penalty_loss(pred[:, :1], target[:, :1])) == 0.0


def test_combined_loss_eq6_switches():
    pml, tcl, pt = torch.tensor(2.0), torch.tensor(3.0), torch.tensor(-5.0)
    assert float(combined_loss(pml, tcl, pt, "pml", 0.1, 0.2)) == pytest.approx(2.0)
    assert float(combined_loss(pml, tcl, pt, "pml+tcl", 0.1, 0.2)) == pytest.approx(2.3)
    assert float(combined_loss(pml, tcl, pt, "pml+tcl+pt", 0.1, 0.2)) == pytest.approx(1.3)
    assert float(combined_loss(pml, None, None, "pml+tcl+pt", 0.1, 0.2)) == pytest.approx(2.0)


def test_task_loss_is_eq6_of_the_model_outputs():
    model = _tiny(frames=3, loss="pml+tcl+pt", lambda_tc=0.3, lambda_p=0.05)
    batch = {"blur": torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8),
             "latent": torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)}
    loss, terms = model.task.loss(model, batch, None)
    out = model(to_float(batch["blur"]), details=True)
    tcl = transformation_consistency_loss(out["theta"]) + transformation_consistency_loss(out["theta_itn"])
    assert terms["tcl"] == pytest.approx(float(tcl.detach()), rel=1e-5)
    assert loss.item() == pytest.approx(terms["pml"] + 0.3 * terms["tcl"] + 0.05 * terms["pt"], rel=1e-5)
    pml_only = _tiny(frames=3, loss="pml")
    loss, terms = pml_only.task.loss(pml_only, batch, None)
    assert loss.item() == pytest.approx(terms["pml"], rel=1e-6)


# --------------------------------------------------------------- evaluation
def test_reverse_order_rule_matches_a_hand_computation():
    target = torch.stack([torch.full((3, 4, 4), v) for v in (0.2, 0.5, 0.8)]).expand(2, 3, 3, 4, 4)
    # Sample 0: 0.75, 0.5, 0.3 — reversed it is off by 0.1, 0, 0.05; as is by 0.55, 0, 0.5.
    # Sample 1: 0.3, 0.4, 0.5 — as is off by 0.1, 0.1, 0.3 (PSNR 20, 20, 10.46: mean 16.82 dB);
    # reversed off by 0.3, 0.1, 0.5 (10.46, 20, 6.02: mean 12.16 dB): keeps the order.
    output = torch.stack([torch.stack([torch.full((3, 4, 4), v) for v in vals])
                          for vals in ((0.75, 0.5, 0.3), (0.3, 0.4, 0.5))])
    aligned = better_order(output, target)
    torch.testing.assert_close(aligned[0], output[0].flip(0))
    torch.testing.assert_close(aligned[1], output[1])
    task = Blur2VideoTask()
    torch.testing.assert_close(task.align(output, target), aligned)
    assert torch.equal(task.align(output[:, :1], target[:, :1]), output[:, :1])


def test_position_names():
    task = Blur2VideoTask()
    assert task.position_names(1) == ["middle"]
    assert task.position_names(3) == ["initial", "middle", "final"]
    assert task.position_names(7) == ["initial", "t1", "t2", "middle", "t4", "t5", "final"]


def test_learning_rate_halves_after_epochs_40_and_60():
    task = Blur2VideoTask()
    config = TrainConfig(lr=2e-4, lr_decay=0.5)
    spe = 7
    assert task.learning_rate(config, 0, spe) == 2e-4
    assert task.learning_rate(config, 40 * spe - 1, spe) == 2e-4
    assert task.learning_rate(config, 40 * spe, spe) == 1e-4
    assert task.learning_rate(config, 60 * spe - 1, spe) == 1e-4
    assert task.learning_rate(config, 60 * spe, spe) == 5e-5
    assert task.learning_rate(config, 80 * spe, spe) == 5e-5
    assert {"batch": 8, "patch": 256, "lr": 1e-4}.items() <= task.defaults.items()


def test_gopro7_recipe_gives_the_high_speed_setting():
    from blursynth.cli.common import load_recipe
    from blursynth.cli.reference import train_reference
    recipe = load_recipe(REPO / "recipes" / "argaw2021_gopro7_train.toml", train_reference)
    assert (recipe["batch"], recipe["patch"], recipe["lr"], recipe["lr_decay"]) == (4, 256, 1e-4, 0.5)


# ---------------------------------------------------------------------- data
def test_dataset_sets_k_from_the_data(pano, hs7, pairs):
    task = Blur2VideoTask()
    for data, k, cls in ((pano, 3, LatentDataset), (hs7, 7, LatentDataset), (pairs, 1, PairDataset)):
        model = _tiny()
        ds = task.dataset(ShardIndex(data), None, model=model, clip_len=None, patch=16, augment=True,
                          flip=True, seed=0)
        assert isinstance(ds, cls) and model.frames == k and len(model.branches) == k - 1
        item = ds[(0, 0)]
        batch = {key: v.unsqueeze(0) for key, v in item.items() if torch.is_tensor(v)}
        out, target, blur = task.outputs(model, batch)
        assert out.shape == target.shape == blur.shape == (1, k, 3, 16, 16)


def test_dataset_refuses_a_model_of_another_k(pano, hs7, pairs):
    task = Blur2VideoTask()
    model = _tiny(frames=7)
    with pytest.raises(BlursynthError, match="3 latent frames but this blur2video model predicts 7"):
        task.dataset(ShardIndex(pano), None, model=model, clip_len=None, patch=None, augment=False,
                     flip=False, seed=0)
    # A pair dataset is scored on the middle frame; a middle-only model on the middle latent frame.
    ds = task.dataset(ShardIndex(pairs), None, model=model, clip_len=None, patch=None, augment=False,
                      flip=False, seed=0)
    batch = {k: v.unsqueeze(0) for k, v in ds[0].items() if torch.is_tensor(v)}
    full = model(to_float(batch["blur"]))
    out, target, _ = task.outputs(model, batch)
    torch.testing.assert_close(out, full[:, 3:4])
    torch.testing.assert_close(target, to_float(batch["sharp"]).unsqueeze(1))
    single = _tiny(frames=1)
    ds = task.dataset(ShardIndex(hs7), None, model=single, clip_len=None, patch=None, augment=False,
                      flip=False, seed=0)
    batch = {k: v.unsqueeze(0) for k, v in ds[0].items() if torch.is_tensor(v)}
    _, target, _ = single.task.outputs(single, batch)
    torch.testing.assert_close(target, to_float(batch["latent"][:, 3:4]))


# ------------------------------------------------------------------ training
def _fixed_batch(data: Path, sources) -> dict:
    index = ShardIndex(data)
    ds = LatentDataset(index, index.select(sources), patch=24)
    items = [ds[i] for i in range(len(ds))]
    return {k: torch.stack([it[k] for it in items]) for k in ("blur", "latent")}


def test_a_few_dozen_steps_lower_the_loss(pano, tmp_path):
    def loss(model):
        with torch.no_grad():
            return float(model.task.loss(model.eval(), batch, None)[0])

    config = TrainConfig(data=str(pano), out=str(tmp_path / "run"), model="blur2video", model_args=TINY,
                         steps=30, batch=2, patch=24, lr=2e-3, workers=0, log_every=10, val_every=1000,
                         ckpt_every=1000, quiet=True)
    torch.manual_seed(0)
    untrained = create_model("blur2video", frames=3, **TINY)  # what the run starts from (same seed)
    train(config)
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    batch = _fixed_batch(pano, split["sources"]["train"])  # the Eq. 6 loss on the samples it trained on
    before, after = loss(untrained), loss(model_from_checkpoint(tmp_path / "run")[0])
    assert after < 0.98 * before, (before, after)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [10, 20, 30]
    assert all({"pml", "tcl", "pt"} <= set(r) for r in log if "loss" in r)


def test_checkpoint_round_trip_restores_k_from_the_weights(hs7, tmp_path):
    config = TrainConfig(data=str(hs7), out=str(tmp_path / "run"), model="blur2video", model_args=TINY,
                         steps=1, batch=1, patch=16, workers=0, quiet=True)
    train(config)
    model, ckpt = model_from_checkpoint(tmp_path / "run")
    assert ckpt["model_args"] == TINY and model.frames == 7 and model.frames_fixed
    assert model.state_dict().keys() == ckpt["state_dict"].keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in ckpt["state_dict"].items())
    blur = torch.rand(1, 3, 16, 16)
    again, _ = model_from_checkpoint(tmp_path / "run")
    with torch.no_grad():
        assert torch.equal(model(blur), again(blur))


# ----------------------------------------------------------------------- CLI
@pytest.mark.parametrize("which,names", [("pano", ["initial", "middle", "final"]),
                                         ("hs7", ["initial", "t1", "t2", "middle", "t4", "t5", "final"]),
                                         ("pairs", ["middle"])])
def test_cli_trains_and_scores_each_kind_of_data(which, names, request, tmp_path):
    data = request.getfixturevalue(which)
    run = tmp_path / "run"
    run_ok("train-reference", "blur2video", "--data", data, "--out", run, "--steps", 2, "--batch", 2,
           "--patch", 16, "--model-arg", "width_mult=0.25", "--workers", 0, "-q")
    report = json.loads(run_ok("eval-reference", run, "--data", data, "--json", "-q").stdout)
    assert list(report["positions"]) == names
    for pos in report["positions"].values():
        assert pos["n_frames"] == report["n_samples"] > 0
        assert 10 < pos["psnr"]["input"] < 80
    table = run_ok("eval-reference", run, "--data", data, "-q").stdout
    assert all(name in table for name in names) and "PSNR in" in table


def test_validate_takes_blur2video_and_picks_it_for_latent_data(pano, trusted_tiny, tmp_path):
    small = ["--steps", 2, "--test", trusted_tiny, "--batch", 2, "--patch", 16, "--model-arg", "width_mult=0.25",
             "--workers", 0, "--max-test-samples", 2]
    named = run_ok("validate", pano, "--model", "blur2video", "--out", tmp_path / "named", *small)
    picked = run_ok("validate", pano, "--out", tmp_path / "picked", *small)
    for result in (named, picked):
        assert "verdict:" in result.output and "blur2video" in result.output
    assert json.loads((tmp_path / "picked" / "train" / "config.json").read_text())["model"] == "blur2video"
