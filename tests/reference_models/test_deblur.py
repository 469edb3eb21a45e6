"""``blursynth deblur``: a trained run applied to frames, an image or a video, checked
against the model called directly in the test on the same frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.helpers import (
    assert_one_line_error, no_partial_output, random_frames, run_cli, run_ok, write_frames, write_video,
)
from blursynth.dataset.outdir import LOCK
from reference_models import create_model
from tests.helpers.handmade import make_tiny_dataset
from tests.helpers.oracles import as_tensor, assert_within_one_lsb, dtb_by_its_recurrence, read_png, to8

H, W = 20, 24
TINY = {
    "dtb": {"blocks": 1, "width": 16, "feature_channels": 8},
    "fsta": {"widths": [6, 8, 10], "spatial_maps": 3, "temporal_maps": 2, "dense_layers": 2},
    "blur2video": {"width_mult": 0.25},
}
SMALL = ["--steps", 1, "--batch", 1, "--patch", 24, "--workers", 0, "--lr", 1e-3, "--val-every", 1000,
         "--val-samples", 1, "-q"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One training step of each tiny model: dtb and fsta on video data, blur2video on K = 3 latent data."""
    root = tmp_path_factory.mktemp("deblur")
    video = make_tiny_dataset(root / "video", n_sources=2, per_source=2)
    latent = make_tiny_dataset(root / "latent", n_sources=2, per_source=2, seq_len=2, latent=3)
    out = {}
    for model, data, extra in (("dtb", video, ["--clip-len", 3]), ("fsta", video, ["--clip-len", 5]),
                               ("blur2video", latent, [])):
        args = [a for k, v in TINY[model].items() for a in ("--model-arg", f"{k}={json.dumps(v)}")]
        run_ok("train-reference", model, "--data", data, "--out", root / f"run-{model}", *args, *SMALL, *extra)
        out[model] = root / f"run-{model}"
        _amplify(out[model])
    return out


def _amplify(run: Path, factor: float = 30.0) -> None:
    """Scale the last conv of dtb/fsta: one step from the near-identity start moves a frame by
    about 1 LSB, too little for a comparison within 1 LSB to tell the recurrence or the window
    apart; scaled, the output moves by tens of LSB and DTB's carried state by about 10."""
    for name in ("checkpoint.pt", "model.pt"):
        ckpt = torch.load(run / name, map_location="cpu", weights_only=True)
        if "conv_out.weight" in ckpt["state_dict"]:
            ckpt["state_dict"]["conv_out.weight"] = ckpt["state_dict"]["conv_out.weight"] * factor
            torch.save(ckpt, run / name)


def load_model(run: Path) -> torch.nn.Module:
    """The run's model rebuilt by hand from its checkpoint file."""
    ckpt = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
    model = create_model(ckpt["model"], **ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


# ---------------------------------------------------------------- the outputs
def test_dtb_frames_equal_its_own_recurrence(runs, tmp_path):
    frames = random_frames(11, H, W, seed=1)
    src = write_frames(tmp_path / "in", frames)  # f0 .. f10: f10 comes after f9, not after f1
    run_ok("deblur", src, "--run", runs["dtb"], "--out", tmp_path / "out", "--device", "cpu", "-q")
    model = load_model(runs["dtb"])
    expected = to8(dtb_by_its_recurrence(model, as_tensor(frames)))
    for i in range(len(frames)):
        assert_within_one_lsb(read_png(tmp_path / "out" / f"f{i}.png"), expected[i])
    # The comparison can tell: without the carried state the frames differ by more than 1 LSB.
    padded = as_tensor(frames[:1] + frames + frames[-1:])
    with torch.no_grad():
        stateless = to8(torch.stack([model.step(padded[n:n + 3][None])[0][0] for n in range(len(frames))]))
    assert np.abs(stateless.astype(int) - expected.astype(int)).max() > 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"f{i}.png" for i in range(11)] + ["deblur.json", LOCK])


def test_fsta_frames_equal_the_padded_clip_in_one_call(runs, tmp_path):
    frames = random_frames(7, H, W, seed=2)
    src = write_frames(tmp_path / "in", frames, name="frame_{:03d}")
    run_ok("deblur", src, "--run", runs["fsta"], "--out", tmp_path / "out", "-q")
    with torch.no_grad():
        expected = to8(load_model(runs["fsta"])(as_tensor(frames)[None], pad=True)[0])
    for i in range(len(frames)):
        assert_within_one_lsb(read_png(tmp_path / "out" / f"frame_{i:03d}.png"), expected[i])


def test_blur2video_writes_its_k_frames_per_image(runs, tmp_path):
    frames = random_frames(3, H, W, seed=3)
    src = write_frames(tmp_path / "in", frames)
    run_ok("deblur", src, "--run", runs["blur2video"], "--out", tmp_path / "out", "-q")
    model = load_model(runs["blur2video"])
    assert model.frames == 3
    for i, frame in enumerate(frames):
        with torch.no_grad():
            expected = to8(model(as_tensor([frame]))[0])
        for k in range(3):
            assert_within_one_lsb(read_png(tmp_path / "out" / f"f{i}_k{k}.png"), expected[k])
        assert np.abs(expected[0].astype(int) - expected[2].astype(int)).max() > 1  # the order is visible
    assert len(list((tmp_path / "out").glob("*.png"))) == 9
    assert "_k1.png" in run_ok("deblur", "--help").output  # the help names the sharp middle frame


def test_video_in_gives_one_png_per_decoded_frame(runs, tmp_path):
    frames = random_frames(6, H, W, seed=4)
    video = write_video(tmp_path / "clip.avi", frames)  # FFV1: lossless, decodes to the same frames
    run_ok("deblur", video, "--run", runs["dtb"], "--out", tmp_path / "out", "-q")
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == [f"frame_{i:06d}.png" for i in range(6)]
    expected = to8(dtb_by_its_recurrence(load_model(runs["dtb"]), as_tensor(frames)))
    for i, name in enumerate(names):
        assert_within_one_lsb(read_png(tmp_path / "out" / name), expected[i])


def test_single_image_in_gives_one_image_out(runs, tmp_path):
    frame = random_frames(1, H, W, seed=5)[0]
    src = write_frames(tmp_path / "in", [frame], ext=".jpg", name="photo")
    run_ok("deblur", src / "photo.jpg", "--run", runs["dtb"], "--out", tmp_path / "out", "-q")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [LOCK, "deblur.json", "photo.png"]
    decoded = cv2.cvtColor(cv2.imread(str(src / "photo.jpg")), cv2.COLOR_BGR2RGB)  # what the model sees
    expected = to8(dtb_by_its_recurrence(load_model(runs["dtb"]), as_tensor([decoded])))[0]
    assert_within_one_lsb(read_png(tmp_path / "out" / "photo.png"), expected)


def test_python_api_deblur_writes_what_the_command_writes(runs, tmp_path):
    import blursynth

    src = write_frames(tmp_path / "in", random_frames(3, H, W, seed=8))
    run_ok("deblur", src, "--run", runs["fsta"], "--out", tmp_path / "cli", "-q")
    blursynth.deblur(src, run=runs["fsta"], out=tmp_path / "api", progress=False)
    names = sorted(p.name for p in (tmp_path / "cli").glob("*.png"))
    assert len(names) == 3 and names == sorted(p.name for p in (tmp_path / "api").glob("*.png"))
    for name in names:
        np.testing.assert_array_equal(read_png(tmp_path / "api" / name), read_png(tmp_path / "cli" / name))


def test_progress_bar_on_stderr_and_quiet_silences_it(runs, tmp_path):
    src = write_frames(tmp_path / "in", random_frames(2, H, W))
    loud = run_ok("deblur", src, "--run", runs["dtb"], "--out", tmp_path / "a")
    assert "deblur" in loud.stderr and "2/2" in loud.stderr and loud.stdout == ""
    quiet = run_ok("deblur", src, "--run", runs["dtb"], "--out", tmp_path / "b", "--quiet")
    assert quiet.output == ""


# ---------------------------------------------------------------- the output folder
def test_rerun_replaces_its_own_output_and_refuses_any_other_folder(runs, tmp_path):
    src = write_frames(tmp_path / "in", random_frames(3, H, W))
    out = tmp_path / "out"
    run_ok("deblur", src, "--run", runs["blur2video"], "--out", out, "-q")
    killed = out / ".deblur.tmp-999999"  # what a run killed by SIGKILL leaves
    killed.mkdir()
    (killed / "f0.png").write_bytes(b"half")
    run_ok("deblur", src, "--run", runs["dtb"], "--out", out, "-q")  # the same inputs: replaced
    assert sorted(p.name for p in out.iterdir()) == [LOCK, "deblur.json", "f0.png", "f1.png", "f2.png"]
    assert json.loads((out / "deblur.json").read_text())["model"] == "dtb"

    other = write_frames(tmp_path / "other", random_frames(3, H, W, seed=9))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert_one_line_error(run_cli("deblur", other, "--run", runs["dtb"], "--out", out), "--out", str(out))
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    assert_one_line_error(run_cli("deblur", src, "--run", runs["dtb"], "--out", tmp_path / "foreign"), "--out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in (tmp_path / "foreign").iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------- bad input
def _case(name: str, tmp_path: Path, runs) -> tuple[list, list[str]]:
    """(command line, words the one-line error must hold) of one bad-input case."""
    frames = random_frames(4, H, W)
    src = write_frames(tmp_path / "in", frames)
    run = runs["dtb"]
    if name == "missing input":
        return [tmp_path / "nope", "--run", run], ["nope"]
    if name == "empty input":
        (tmp_path / "empty").mkdir()
        return [tmp_path / "empty", "--run", run], ["empty", "no frames"]
    if name == "run without checkpoint":
        (tmp_path / "norun").mkdir()
        return [src, "--run", tmp_path / "norun"], ["--run", "norun"]
    if name == "unknown device":
        return [src, "--run", run, "--device", "tpu"], ["--device", "tpu"]
    if name == "other size in the middle":
        write_frames(tmp_path / "in", [random_frames(1, H + 2, W)[0]], name="f2")
        return [src, "--run", run], ["f2.png", f"{W}x{H + 2}"]
    if name == "unreadable image":
        (src / "f2.png").write_bytes(b"not an image at all")
        return [src, "--run", run], ["f2.png"]
    if name == "truncated frame found while decoding":
        data = (src / "f3.png").read_bytes()  # a whole header, so probing passes; the pixels are cut
        (src / "f3.png").write_bytes(data[:60])
        return [src, "--run", run], ["f3.png"]
    raise AssertionError(name)


@pytest.mark.parametrize("case", ["missing input", "empty input", "run without checkpoint", "unknown device",
                                  "other size in the middle", "unreadable image",
                                  "truncated frame found while decoding"])
def test_bad_input_is_one_line_and_writes_nothing(case, runs, tmp_path):
    args, words = _case(case, tmp_path, runs)
    out = tmp_path / "out"
    assert_one_line_error(run_cli("deblur", *args, "--out", out, "-q"), *words)
    assert no_partial_output(out) and not out.exists()
