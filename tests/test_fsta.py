"""FSTA (Suin & Rajagopalan): the block against Eqs. 1–6 written out, the network, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reference_models import create_model
from reference_models.fsta import FSTA, FSTANet

TINY = {"widths": (6, 8, 10), "spatial_maps": 3, "temporal_maps": 2, "dense_layers": 2}


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
