"""Every registered model through its task (loss, gradients, NaNs, output shapes); the video
models' clip shapes; DTB's recurrence and blending."""

from __future__ import annotations

import math

import pytest
import torch

from blursynth.errors import BlursynthError
from reference_models import create_model, list_models, task_for, task_of
from reference_models.dtb import DTBNet, DTBState
from reference_models.train import TrainConfig, resolve_defaults

TINY = {"blocks": 1, "width": 16, "feature_channels": 8}  # a tiny DTB, for DTB's own tests


def _tiny(name):
    torch.manual_seed(0)
    return create_model(name, **TINY)


def _small(name):
    """The model of its task's probe preset (every task states a small model)."""
    torch.manual_seed(0)
    return create_model(name, **task_for(name).preset("probe").get("model_args", {}))


# Clip-in, clip-out models, by their contract (image models map one image to K frames:
# tests/reference_models/test_blur2video.py).
VIDEO_MODELS = [n for n in list_models() if task_for(n).inference != "image"]


def _batch(form: str, h: int = 32, w: int = 24) -> dict:
    """A random batch of two items as the datasets of data ``form`` yield them (uint8 frames)."""
    g = torch.Generator().manual_seed(0)

    def frames(*shape):
        return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)

    if form == "video":
        return {"blur": frames(2, 5, 3, h, w), "sharp": frames(2, 5, 3, h, w)}
    if form == "latent":
        return {"blur": frames(2, 3, h, w), "latent": frames(2, 3, 3, h, w)}
    return {"blur": frames(2, 3, h, w), "sharp": frames(2, 3, h, w)}


@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_through_its_task(name):
    """The contract: the task's loss reaches every parameter, finitely; outputs line up with targets."""
    model = _small(name)
    task = task_of(model)
    assert task is task_for(name)  # the registry reads the task without building the model
    batch = _batch(task.learns_from)
    loss, terms = task.loss(model, batch, resolve_defaults(TrainConfig(), task))
    assert loss.ndim == 0 and loss.dtype == torch.float32 and torch.isfinite(loss)
    assert terms and all(math.isfinite(v) for v in terms.values())
    loss.backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} gets a zero gradient"
    with torch.no_grad():
        output, target, blur = task.outputs(model.eval(), batch)
    assert output.shape == target.shape == blur.shape and output.ndim == 5 and output.shape[2] == 3
    assert torch.isfinite(output).all()
    assert len(task.position_names(output.shape[1])) == output.shape[1]


def test_registry_lists_the_ablation():
    assert {"dtb", "strcnn", "cnn"} <= set(list_models())
    with pytest.raises(BlursynthError, match="unknown"):
        create_model("nope")


@pytest.mark.parametrize("name", VIDEO_MODELS)
@pytest.mark.parametrize("size", [(16, 16), (17, 23), (9, 12)])
def test_output_shapes_odd_and_even(name, size):
    model = _small(name)
    h, w = size
    clip = torch.rand(2, 5, 3, h, w)
    assert model(clip).shape == (2, 5 - 2 * task_of(model).context(model), 3, h, w)
    assert model(clip, pad=True).shape == (2, 5, 3, h, w)
    if task_of(model).inference == "online":  # the online contract: the state comes back
        latent, state = model(clip, return_state=True)
        assert latent.shape == (2, 5 - 2 * task_of(model).context(model), 3, h, w) and state is not None


@pytest.mark.parametrize("name", VIDEO_MODELS)
def test_every_parameter_gets_a_gradient_and_no_nans(name):
    model = _small(name)
    clip = torch.rand(2, 5, 3, 12, 14)
    out = model(clip)
    assert torch.isfinite(out).all()
    m = task_of(model).context(model)
    ((out - clip[:, m:5 - m]) ** 2).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{pname} gets a zero gradient"


def test_beta_is_a_trained_parameter_in_0_1():
    model = _tiny("dtb")
    names = dict(model.named_parameters())
    assert "beta_logit" in names  # registered, so the optimizer trains it
    assert 0 < float(model.beta.detach()) < 1
    opt = torch.optim.SGD(model.parameters(), lr=100.0)
    before = float(model.beta.detach())
    clip = torch.rand(1, 6, 3, 10, 10)
    ((model(clip) - clip[:, 1:5]) ** 2).mean().backward()
    assert names["beta_logit"].grad.abs() > 0
    opt.step()
    assert float(model.beta.detach()) != before and 0 <= float(model.beta.detach()) <= 1


def test_variants_are_flags():
    dtb, strcnn, cnn = (_tiny(n) for n in ("dtb", "strcnn", "cnn"))
    assert (dtb.recurrent, dtb.blending) == (True, True)
    assert (strcnn.recurrent, strcnn.blending) == (True, False)
    assert (cnn.recurrent, cnn.blending) == (False, False)
    assert not hasattr(strcnn, "beta_logit") and not hasattr(cnn, "conv_feature")
    with pytest.raises(ValueError, match="fixed by the variant"):
        create_model("cnn", recurrent=True)


def test_cnn_has_no_memory():
    model = _tiny("cnn")
    clip = torch.rand(1, 6, 3, 10, 10)
    out = model(clip)
    for n in range(1, 5):  # each output depends only on its own three frames
        alone, _ = model.step(clip[:, n - 1:n + 2], None)
        torch.testing.assert_close(out[:, n - 1], alone, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["cnn", "dtb", "strcnn"])
def test_online_steps_equal_the_whole_clip(name):
    model = _tiny(name).eval()
    clip = torch.rand(2, 7, 3, 11, 13)
    with torch.no_grad():
        whole = model(clip)
        state, online = None, []
        for n in range(1, 6):
            latent, state = model.step(clip[:, n - 1:n + 2], state)
            online.append(latent)
        torch.testing.assert_close(torch.stack(online, 1), whole, rtol=0, atol=0)
        # A caller can keep the state across calls: two chunks overlapping by 2m frames.
        first, state = model(clip[:, :4], return_state=True)
        second = model(clip[:, 2:], state=state)
        torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=0)


def test_recurrence_carries_information():
    model = _tiny("dtb").eval()
    clip = torch.rand(1, 6, 3, 10, 10)
    changed = clip.clone()
    changed[:, 0] = 0.0
    with torch.no_grad():
        a, b = model(clip), model(changed)
    assert not torch.equal(a[:, -1], b[:, -1])  # frame 0 still matters at the last step


def test_dtb_blending_formula():
    """h̃_n = w h_n + (1 − w) h̃_{n−1} with w = min(1, |tanh(conv(h̃_{n−1}, h_n))| + β), recomputed here."""
    model = _tiny("dtb").eval()
    clip = torch.rand(1, 4, 3, 10, 10)
    with torch.no_grad():
        _, s1 = model.step(clip[:, 0:3])
        _, s2 = model.step(clip[:, 1:4], s1)
        x = torch.relu(model.conv_down(torch.relu(model.conv_in(clip[:, 1:4].flatten(1, 2)))))
        h = model.encoder(torch.cat([x, s1.feature], 1))
        w = torch.minimum(torch.ones(()), model.blend(torch.cat([s1.hidden, h], 1)).tanh().abs()
                          + torch.sigmoid(model.beta_logit))
        torch.testing.assert_close(s2.hidden, w * h + (1 - w) * s1.hidden)


def test_untrained_model_is_close_to_the_identity():
    model = create_model("dtb").eval()
    clip = torch.rand(1, 3, 3, 24, 24)
    with torch.no_grad():
        out = model(clip)
    assert (out[:, 0] - clip[:, 1]).abs().mean() < 0.05


def test_bf16_autocast_and_channels_last_on_cpu():
    model = _tiny("dtb").eval()
    clip = torch.rand(1, 4, 3, 12, 12)
    with torch.no_grad():
        ref = model(clip)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(clip)
        model.to(memory_format=torch.channels_last)
        cl = model(clip)
    assert low.dtype == torch.float32 and torch.isfinite(low).all()
    torch.testing.assert_close(low, ref, atol=0.05, rtol=0)
    torch.testing.assert_close(cl, ref, atol=1e-5, rtol=1e-5)


def test_bad_input_raises_value_error():
    model = _tiny("dtb")
    with pytest.raises(ValueError, match=r"frames must be \[B, 3, 3, H, W\]"):
        model.step(torch.rand(1, 4, 3, 8, 8))
    with pytest.raises(ValueError, match="pad=True"):
        model(torch.rand(1, 2, 3, 8, 8))
    _, state = model.step(torch.rand(1, 3, 3, 8, 8))
    with pytest.raises(ValueError, match="state.feature"):
        model.step(torch.rand(1, 3, 3, 16, 16), state)
    with pytest.raises(ValueError, match="frames must be a positive odd"):
        DTBNet(frames=4)
    with pytest.raises(ValueError, match="beta"):
        DTBNet(beta=1.0)
    assert DTBState().detach() == DTBState()
