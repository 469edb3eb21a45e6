"""FSTA (Suin & Rajagopalan): the block against Eqs. 1–6 written out, the network, training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from blursynth.errors import BlursynthError
from reference_models import create_model, task_of
from reference_models.checkpoint import load_checkpoint, model_from_checkpoint
from reference_models.data import ShardIndex, VideoClipDataset, to_float
from reference_models.evaluate import evaluate
from reference_models.fsta import FSTA, FSTANet
from reference_models.train import TrainConfig, resolve_defaults, train
from tests.helpers import run_ok
from tests.helpers.handmade import make_split_tiny_dataset

TINY = {"widths": [6, 8, 10], "spatial_maps": 3, "temporal_maps": 2, "dense_layers": 2}


def naive_fsta(block: FSTA, x: torch.Tensor) -> dict:
    """Eqs. 1–6 for ONE window x [B, T, C, H, W] with explicit loops, the paper's
    batch = channel = 1 formulas applied per sample and per channel."""
    b, t, c, h, w = x.shape
    m, n = block.spatial_maps, block.temporal_maps
    r = t // 2
    a_s = torch.zeros(b, t, m, h * w, dtype=x.dtype)
    g_s = torch.zeros(b, t, m, c, dtype=x.dtype)
    a_t = torch.zeros(b, n, t, dtype=x.dtype)
    g_st = torch.zeros(b, c, m, n, dtype=x.dtype)
    a_p = torch.zeros(b, m * n, h * w, dtype=x.dtype)
    y = torch.zeros(b, c, h, w, dtype=x.dtype)
    for i in range(b):
        for f in range(t):
            logits = F.conv2d(x[i, f][None], block.f_s.weight, block.f_s.bias, padding=1)[0]   # [M, H, W]
            for j in range(m):
                e = torch.exp(logits[j] - logits[j].max())
                a_s[i, f, j] = (e / e.sum()).flatten()                                     # Eq. 1
                for k in range(c):
                    g_s[i, f, j, k] = (a_s[i, f, j] * x[i, f, k].flatten()).sum()          # Eq. 2
        pooled = torch.stack([x[i, f].mean(dim=(1, 2)) for f in range(t)], 1)              # x': [C, T]
        tl = F.conv1d(pooled[None], block.f_t.weight, block.f_t.bias, padding=block.f_t.padding)[0]
        for j in range(n):
            e = torch.exp(tl[j] - tl[j].max())
            a_t[i, j] = e / e.sum()                                                        # Eq. 3
        for k in range(c):
            g_st[i, k] = g_s[i, :, :, k].T @ a_t[i].T                                      # Eq. 4: [M,T]·[T,N]
        pl = F.conv2d(x[i, r][None], block.f_p.weight, block.f_p.bias, padding=1)[0].reshape(m * n, -1)
        for p in range(h * w):
            e = torch.exp(pl[:, p] - pl[:, p].max())
            a_p[i, :, p] = e / e.sum()                                                     # Eq. 5
        for k in range(c):
            flat = g_st[i, k].reshape(m * n)                                               # index m·N + n
            y[i, k] = torch.einsum("q,qp->p", flat, a_p[i]).reshape(h, w)                  # Eq. 6
    z = x[:, r] + F.conv2d(y, block.w_z.weight, block.w_z.bias)
    return {"A_s": a_s, "G_s": g_s, "A_t": a_t, "G_st": g_st.reshape(b, c, m * n), "A_p": a_p, "y": y, "z": z}


def _block(c=5, t=5, m=3, n=2, seed=0):
    torch.manual_seed(seed)
    return FSTA(c, frames=t, spatial_maps=m, temporal_maps=n).double()


@pytest.mark.parametrize("t,h,w", [(5, 6, 7), (3, 4, 4), (1, 3, 5)])
def test_block_matches_eqs_1_to_6_written_out(t, h, w):
    block = _block(t=t)
    x = torch.randn(2, t, 5, h, w, dtype=torch.float64)
    ours = block.attention(x)
    ref = naive_fsta(block, x)
    torch.testing.assert_close(ours["A_s"], ref["A_s"])
    torch.testing.assert_close(ours["G_s"], ref["G_s"])
    torch.testing.assert_close(ours["A_t"][:, 0], ref["A_t"])
    torch.testing.assert_close(ours["G_st"][:, 0], ref["G_st"])
    torch.testing.assert_close(ours["A_p"][:, 0], ref["A_p"])
    torch.testing.assert_close(ours["y"][:, 0], ref["y"])
    torch.testing.assert_close(block(x)[:, 0], ref["z"])


def test_sliding_windows_equal_each_window_alone():
    block = _block(t=3)
    x = torch.randn(2, 7, 5, 4, 6, dtype=torch.float64)
    out = block(x)
    assert out.shape == (2, 5, 5, 4, 6)
    for i in range(5):
        torch.testing.assert_close(out[:, i], naive_fsta(block, x[:, i:i + 3])["z"])


def test_each_softmax_sums_to_one_over_its_axis():
    block = _block(t=5, m=4, n=3)
    x = torch.randn(2, 6, 5, 7, 8, dtype=torch.float64) * 3
    a = block.attention(x)
    ones = torch.ones((), dtype=torch.float64)
    # Eq. 1 over H·W, Eq. 3 over T, Eq. 5 over the M·N axis.
    torch.testing.assert_close(a["A_s"].sum(-1), ones.expand(2, 6, 4))
    torch.testing.assert_close(a["A_t"].sum(-1), ones.expand(2, 2, 3))
    torch.testing.assert_close(a["A_p"].sum(2), ones.expand(2, 2, 7 * 8))
    for k in ("A_s", "A_t", "A_p"):
        assert (a[k] >= 0).all()
    # ... and not over the other axes (the maps are not uniform).
    assert not torch.allclose(a["A_p"].sum(-1), torch.full_like(a["A_p"].sum(-1), 1.0))


@pytest.mark.parametrize("size", [(8, 8), (9, 13), (1, 1), (16, 15)])
def test_block_shapes_odd_and_even(size):
    block = FSTA(4, frames=3, spatial_maps=2, temporal_maps=2)
    out = block(torch.rand(1, 4, 4, *size))
    assert out.shape == (1, 2, 4, *size)


@pytest.mark.parametrize("size", [(16, 16), (17, 23), (9, 12), (5, 3)])
def test_network_shapes_odd_and_even(size):
    torch.manual_seed(0)
    model = create_model("fsta", **TINY)
    clip = torch.rand(2, 6, 3, *size)
    assert model(clip).shape == (2, 2, 3, *size)
    assert model(clip, pad=True).shape == (2, 6, 3, *size)
    assert model(clip[:, :2], pad=True).shape == (2, 2, 3, *size)  # shorter than T: padding fills in


def test_padding_features_equals_repeating_the_end_frames():
    torch.manual_seed(0)
    model = create_model("fsta", **TINY).double()
    clip = torch.rand(1, 4, 3, 10, 11, dtype=torch.float64)
    padded = torch.cat([clip[:, :1], clip[:, :1], clip, clip[:, -1:], clip[:, -1:]], 1)
    torch.testing.assert_close(model(clip, pad=True), model(padded))


def test_each_output_depends_only_on_its_window():
    torch.manual_seed(0)
    model = create_model("fsta", **TINY).double()
    clip = torch.rand(1, 8, 3, 9, 10, dtype=torch.float64)
    out = model(clip)
    for i in range(4):
        torch.testing.assert_close(out[:, i], model(clip[:, i:i + 5])[:, 0])


def test_untrained_network_is_close_to_identity():
    torch.manual_seed(0)
    model = create_model("fsta", **TINY)
    clip = torch.rand(1, 5, 3, 12, 12)
    assert (model(clip, pad=True) - clip).abs().mean() < 0.05


@pytest.mark.parametrize("scales", [(0,), (1, 2), (0, 1, 2)])
def test_every_parameter_gets_a_gradient(scales):
    torch.manual_seed(0)
    model = FSTANet(**{**TINY, "fsta_scales": scales})
    assert len(model.fusion) == len(scales)
    clip = torch.rand(2, 5, 3, 12, 14)
    out = model(clip, pad=True)
    assert torch.isfinite(out).all()
    ((out - clip.flip(1)) ** 2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} gets no gradient"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} gets a zero gradient"


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="frames"):
        FSTANet(frames=4)
    with pytest.raises(ValueError, match="fsta_scales"):
        FSTANet(widths=(8, 16), fsta_scales=(2,))
    with pytest.raises(ValueError, match="temporal_maps"):
        FSTA(8, temporal_maps=0)
    with pytest.raises(ValueError, match="pad=True"):
        FSTANet(**TINY)(torch.rand(1, 3, 3, 8, 8))


# ---------------------------------------------------------------- training and scoring

@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_split_tiny_dataset(tmp_path_factory.mktemp("fsta") / "data")  # runs of 5 frames, 40×40


def _config(data, out, **kw) -> TrainConfig:
    base = dict(data=str(data), out=str(out), model="fsta", model_args=TINY, steps=4, batch=2, patch=24,
                clip_len=5, lr=1e-3, workers=0, log_every=1, val_every=1000, val_samples=2, ckpt_every=1000,
                quiet=True)
    return TrainConfig(**{**base, **kw})


def test_the_paper_preset_fills_what_the_user_left_unset_and_trains_one_window():
    task = FSTANet.task
    config = resolve_defaults(TrainConfig(data="d", out="o", model="fsta"), task)
    assert all(getattr(config, field) == value for field, value in task.preset("paper").items()
               if field != "model_args")
    given = resolve_defaults(TrainConfig(data="d", out="o", model="fsta", batch=3, lr=2e-3), task)
    assert (given.batch, given.lr) == (3, 2e-3)  # a flag wins
    # the paper trains on one window of T frames: the default clip is the default model's window
    assert config.clip_len == create_model("fsta").frames
    assert config.weight_reg == 0  # the loss has no weight penalty, so the default must not ask for one


def test_learning_rate_is_a_staircase_in_epochs():
    config = resolve_defaults(TrainConfig(data="d", out="o", model="fsta"), FSTANet.task)
    per_epoch = 7
    every = config.lr_decay_every * per_epoch  # --lr-decay-every counts epochs for this model
    lr = [FSTANet.task.learning_rate(config, step, steps_per_epoch=per_epoch)
          for step in (0, every - 1, every, 2 * every - 1, 2 * every)]
    d = config.lr_decay
    assert lr == pytest.approx([config.lr, config.lr, config.lr * d, config.lr * d, config.lr * d * d])
    assert 0 < d < 1


def test_a_few_dozen_steps_lower_the_loss(data, tmp_path):
    ds = VideoClipDataset(ShardIndex(data), clip_len=5, patch=32)
    items = [ds[i] for i in range(0, len(ds), 2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("blur", "sharp")}
    config = _config(data, tmp_path / "run", steps=36, batch=4, patch=32, lr=3e-3, log_every=12)

    def l1(model):
        with torch.no_grad():
            return FSTANet.task.loss(model, batch, config)[0].item()

    torch.manual_seed(config.seed)
    before = l1(create_model("fsta", **TINY))
    train(config)
    after = l1(model_from_checkpoint(tmp_path / "run")[0])
    assert after < 0.99 * before  # 0.983 when written (the tiny net deconvolves a 5-tap box blur slowly)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [12, 24, 36]
    assert all("l1" in r for r in log if "loss" in r)


def test_checkpoint_round_trip(data, tmp_path):
    train(_config(data, tmp_path / "run", steps=3))
    stored = load_checkpoint(tmp_path / "run")
    model, ckpt = model_from_checkpoint(tmp_path / "run")
    assert isinstance(model, FSTANet) and ckpt["model"] == "fsta" and ckpt["model_args"] == TINY
    assert model.widths == tuple(TINY["widths"]) and model.fusion["1"].spatial_maps == 3
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, stored["state_dict"][name]), name
    twin = create_model("fsta", **TINY)
    twin.load_state_dict(stored["state_dict"])
    clip = torch.rand(1, 6, 3, 13, 11)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(clip, pad=True), twin.eval()(clip, pad=True), rtol=0, atol=0)


def test_outputs_give_one_output_per_input_frame(data):
    torch.manual_seed(0)
    model = create_model("fsta", **TINY).eval()
    task = task_of(model)
    ds = task.dataset(ShardIndex(data), None, model=model, clip_len=None, patch=None, augment=False,
                      flip=False, seed=0)
    item = ds[0]
    batch = {k: torch.as_tensor(v)[None] for k, v in item.items()}
    with torch.no_grad():
        out, target, blur = task.outputs(model, batch)
    assert out.shape == target.shape == blur.shape == (1, 5, 3, 40, 40)  # the sample's 5 frames
    first = int(item["first"])
    torch.testing.assert_close(blur, to_float(item["blur"])[None, first:first + 5])


def test_eval_reports_every_frame_beside_the_input(data, tmp_path):
    train(_config(data, tmp_path / "run", steps=2))
    report = evaluate(tmp_path / "run", data, split="test", progress=False)
    assert list(report["positions"]) == ["t0", "t1", "t2", "t3", "t4"]
    for scores in report["positions"].values():
        assert set(scores["psnr"]) == {"output", "input", "gain"}
        assert scores["psnr"]["gain"] == pytest.approx(scores["psnr"]["output"] - scores["psnr"]["input"])
    assert report["n_frames"] == 5 * report["n_samples"]


def test_weight_reg_is_refused(data, tmp_path):
    with pytest.raises(BlursynthError, match="--weight-reg"):
        train(_config(data, tmp_path / "run", steps=1, weight_reg=1e-5))


def test_cli_train_eval_validate(data, trusted_tiny, tmp_path):
    tiny = [a for k, v in TINY.items() for a in ("--model-arg", f"{k}={json.dumps(v)}")]
    small = ["--batch", 2, "--patch", 24, "--workers", 0, "-q"]
    run_ok("train-reference", "fsta", "--data", data, "--out", tmp_path / "run", "--steps", 2, *tiny, *small)
    assert load_checkpoint(tmp_path / "run")["config"]["clip_len"] == 5  # the task's default
    result = run_ok("eval-reference", tmp_path / "run", "--data", data, "--split", "test", "-q")
    rows = {line.split()[0] for line in result.output.splitlines()[1:]}
    assert {"t0", "t1", "t2", "t3", "t4", "mean"} <= rows and "PSNR in" in result.output
    result = run_ok("validate", data, "--model", "fsta", "--test", trusted_tiny, "--steps", 2, "--out", tmp_path / "val",
                    *tiny, *small)
    assert "verdict:" in result.output.strip().splitlines()[-1]
