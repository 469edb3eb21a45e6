"""One home for each twin (issue 21, item 3): the PSNR, the PNG writer and the seeded draw
across sources that blursynth and the reference models share, against oracles written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from blursynth.curate.measures import psnr
from blursynth.curate.split import draw_across_sources
from tests.helpers.handmade import make_dataset
from reference_models.metrics import psnr as torch_psnr


def oracle_psnr(a, b, peak):
    """10 log10(peak² / MSE) of one image, in plain Python floats."""
    a, b = np.asarray(a, np.float64).ravel().tolist(), np.asarray(b, np.float64).ravel().tolist()
    mse = sum((x - y) ** 2 for x, y in zip(a, b)) / len(a)
    return math.inf if mse == 0 else 10 * math.log10(peak ** 2 / mse)


# ---------------------------------------------------------------------- PSNR
def test_psnr_per_image_and_whole_against_the_formula():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 6, 7, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (3, 6, 7, 3), dtype=np.uint8)
    b[1] = a[1]  # an exact match: inf dB
    per_image = psnr(a, b, axis=(1, 2, 3))
    assert per_image.shape == (3,)
    assert per_image.tolist() == pytest.approx([oracle_psnr(a[i], b[i], 255) for i in range(3)], rel=1e-12)
    assert psnr(a, b) == pytest.approx(oracle_psnr(a, b, 255), rel=1e-12)
    assert psnr(a[1], b[1]) == math.inf
    assert psnr(a / 255.0, b / 255.0, data_range=1.0) == pytest.approx(oracle_psnr(a, b, 255), rel=1e-12)
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, b, data_range=0)
    with pytest.raises(ValueError, match="same shape"):
        psnr(a, b[:2])


def test_evaluation_psnr_is_the_report_psnr():
    """The reference models' metric ([B, C, H, W] tensors) gives the numbers of the report's
    blur strength (uint8 [H, W, 3] arrays) for the same images."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (2, 5, 9, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    nchw = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float()  # noqa: E731
    got = torch_psnr(nchw(a), nchw(b))
    assert got.dtype == torch.float64
    assert got.tolist() == pytest.approx([psnr(a[i], b[i]) for i in range(2)], rel=1e-12)
    assert got.tolist() == pytest.approx([oracle_psnr(a[i], b[i], 255) for i in range(2)], rel=1e-12)


# ----------------------------------------------------------------------- PNG
@pytest.mark.parametrize("level", [None, 0, 9])
def test_png_writer_stores_the_rgb_pixels(level):
    """Decoded by another library (Pillow, which reads PNG as RGB), the pixels come back
    exactly, channels in order, at every level; a higher level makes a smaller file."""
    import io

    from PIL import Image

    from blursynth.png import encode_png
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[..., 0] = np.arange(12) * 20  # red rises to the right, green downwards, blue constant
    rgb[..., 1] = np.arange(8)[:, None] * 30
    rgb[..., 2] = 77
    data = encode_png(rgb, level)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = Image.open(io.BytesIO(data))
    assert decoded.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(decoded), rgb)
    if level == 9:
        noise = np.random.default_rng(0).integers(0, 4, (64, 64, 3), dtype=np.uint8)
        assert len(encode_png(noise, 9)) < len(encode_png(noise, 0))


# ------------------------------------------------------ draw across sources
def test_draw_across_sources_goes_round_the_sources():
    sources = ["b"] * 2 + ["a"] * 6 + ["d"] * 1 + ["c"] * 3
    for seed in range(4):
        drawn = draw_across_sources(sources, None, seed)
        assert sorted(drawn) == list(range(len(sources)))  # all, none twice
        got = [sources[i] for i in drawn]
        # The seed orders the sources first: a permutation of their sorted names.
        first = [["a", "b", "c", "d"][i] for i in np.random.default_rng(seed).permutation(4)]
        assert got[:4] == first
        # Then round after round, one from each source with samples left, in that order.
        left = {s: sources.count(s) for s in first}
        rounds = []
        while any(left.values()):
            rounds += [s for s in first if left[s]]
            left = {s: max(0, k - 1) for s, k in left.items()}
        assert got == rounds
        assert draw_across_sources(sources, 5, seed) == drawn[:5]
        assert draw_across_sources(sources, 99, seed) == drawn
    assert len({tuple(draw_across_sources(sources, None, s)) for s in range(6)}) > 1


def test_preview_rows_and_evaluation_samples_are_one_draw(tmp_path, monkeypatch):
    """For one seed, ``preview``'s contact sheet shows the samples the reference models
    validate and evaluate on (the sheet in draw order, the evaluation in index order)."""
    import blursynth.curate.preview as preview
    from reference_models.data import ShardIndex
    from reference_models.heldout import sample_across_sources

    counts = {"s0": 3, "s1": 1, "s2": 2, "s3": 2}
    ds = make_dataset(tmp_path / "ds", [[{"source": s, "shape": (1, 8, 8)} for s, k in counts.items()
                                         for _ in range(k)]])
    shown = []
    label = preview.row_label
    monkeypatch.setattr(preview, "row_label", lambda sample, t, n: shown.append(int(sample["index"])) or label(sample, t, n))
    refs = ShardIndex(ds).refs
    preview.contact_sheet(ds, tmp_path / "sheet.png", n=3, seed=3)
    assert len({refs[i].source for i in shown}) == 3  # three rows, three sources
    assert sorted(shown) == [r.index for r in sample_across_sources(refs, 3, 3)]


# ---------------------------------------------------------------- dense block
@pytest.mark.parametrize("residual", [True, False])
def test_dense_block_against_a_hand_written_forward(residual):
    """Both models' dense block: each conv3×3 sees the input and every earlier output, a 1×1
    conv fuses them; FSTA's adds the input (ReLU), Blur2Video's activates the fusion (LeakyReLU)."""
    import torch.nn.functional as F

    from reference_models.layers import DenseBlock
    torch.manual_seed(0)
    out_channels = 5 if residual else 7
    act = None if residual else torch.nn.LeakyReLU(0.2)
    block = DenseBlock(5, 3, out_channels, layers=2, act=act, residual=residual).double()
    # The parameter names the models' checkpoints hold.
    assert sorted(block.state_dict()) == ["convs.0.bias", "convs.0.weight", "convs.1.bias", "convs.1.weight",
                                          "fuse.bias", "fuse.weight"]
    x = torch.rand(2, 5, 6, 7, dtype=torch.float64)
    w = {k: v.detach() for k, v in block.state_dict().items()}
    f = (lambda t: F.leaky_relu(t, 0.2)) if act is not None else F.relu
    f1 = f(F.conv2d(x, w["convs.0.weight"], w["convs.0.bias"], padding=1))
    f2 = f(F.conv2d(torch.cat([x, f1], 1), w["convs.1.weight"], w["convs.1.bias"], padding=1))
    fused = F.conv2d(torch.cat([x, f1, f2], 1), w["fuse.weight"], w["fuse.bias"])
    expected = x + fused if residual else f(fused)
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-12)
    if residual:
        with pytest.raises(ValueError, match="out_channels"):
            DenseBlock(5, 3, 6, residual=True)


# ------------------------------------------------------------------- signals
def _deliver(sig):
    """Send ``sig`` to this process and let Python run its handler (at the next bytecode)."""
    import os
    import signal
    import time
    os.kill(os.getpid(), sig)
    time.sleep(0.01)


def test_training_stops_after_the_step_and_a_second_ctrl_c_stops_now():
    import signal

    from blursynth.run.signals import stop_between_steps
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with stop_between_steps() as flag:
        _deliver(signal.SIGTERM)
        assert flag.signum == signal.SIGTERM  # no exception: the loop ends its step
        _deliver(signal.SIGTERM)
        assert flag.signum == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            _deliver(signal.SIGINT)  # a Ctrl-C after a stop was asked: at once
    assert {s: signal.getsignal(s) for s in before} == before
    with stop_between_steps() as flag:
        _deliver(signal.SIGINT)
        assert flag.signum == signal.SIGINT
    assert {s: signal.getsignal(s) for s in before} == before


def test_synthesis_stops_at_once_on_sigterm_and_ignores_a_second():
    import signal

    from blursynth.errors import InterruptedRun
    from blursynth.run.signals import stop_on_sigterm
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(InterruptedRun) as info:
        with stop_on_sigterm():
            _deliver(signal.SIGTERM)
    assert info.value.signal_number == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(InterruptedRun):
        with stop_on_sigterm():
            try:
                _deliver(signal.SIGTERM)
            finally:  # cleaning up: a second SIGTERM is ignored
                assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
                _deliver(signal.SIGTERM)
