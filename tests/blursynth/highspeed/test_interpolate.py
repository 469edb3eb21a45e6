"""Ghosting control (issue 14): the motion measure and --interpolate against oracles written here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blursynth.run.engine import RunOptions
from blursynth.errors import BlursynthError
from blursynth.highspeed import HighspeedConfig, synthesize
from blursynth.dataset import iter_samples
from tests.helpers import write_frames

H, W, STEP, TAU = 40, 112, 8, 5
OBJ_Y, OBJ_H, OBJ_W, X0 = 8, 24, 24, 8


def texture(h, w, seed, lo, hi):
    noise = np.random.default_rng(seed).standard_normal((h, w)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return np.repeat((lo + (hi - lo) * smooth)[..., None], 3, axis=2)


BACKGROUND = texture(H, W, 1, 20.0, 110.0)
OBJECT = texture(OBJ_H, OBJ_W, 2, 120.0, 240.0)


def scene(x: int) -> np.ndarray:
    """The textured object at column ``x`` over the static textured background (float, code values)."""
    frame = BACKGROUND.copy()
    frame[OBJ_Y:OBJ_Y + OBJ_H, x:x + OBJ_W] = OBJECT
    return frame


def run(tmp_path, clip, name, workers=1, **config):
    options = RunOptions(out=tmp_path / name, workers=workers, shard_size=2, quiet=True)
    synthesize(HighspeedConfig(src=(str(clip),), tau=(TAU,), T="tau", response="linear", **config), options)
    return list(iter_samples(tmp_path / name))


def assert_motion_of_the_object(meta):
    """The motion measure sees 8 px per frame on the object's area and 0 elsewhere.

    The largest displacement of a DIS flow overshoots a little at the object's
    edges; the mean is at least the object's share of the frame times 8 px, plus
    the flow that spills into the background around it (on this small frame, up
    to about as much again: 2.5 px measured against 1.0), and well below 8 px.
    """
    assert 7.0 <= meta["motion_max"] <= 12.0
    share = OBJ_H * OBJ_W / (H * W)
    assert 0.8 * STEP * share <= meta["motion_mean"] <= 0.4 * STEP, meta["motion_mean"]


def test_interpolation_halves_the_error_to_the_continuous_exposure(tmp_path):
    frames = [np.rint(scene(X0 + STEP * k)).astype(np.uint8) for k in range(TAU)]
    clip = write_frames(tmp_path / "moving", frames)
    # The continuous exposure: every position the object passes, 1 px apart, in linear light.
    ideal = np.mean([scene(X0 + j) for j in range(STEP * (TAU - 1) + 1)], axis=0)
    plain = run(tmp_path, clip, "plain")[0]
    interp = run(tmp_path, clip, "interp", interpolate=4)[0]
    err_plain = np.abs(plain.arrays["blur"][0].astype(np.float64) - ideal).mean()
    err_interp = np.abs(interp.arrays["blur"][0].astype(np.float64) - ideal).mean()
    assert err_interp <= 0.5 * err_plain, (err_interp, err_plain)
    # The sharp target stays the real mid-exposure source frame.
    np.testing.assert_array_equal(interp.arrays["sharp"][0], frames[(TAU - 1) // 2])
    assert_motion_of_the_object(interp.meta)


def test_interpolation_leaves_a_static_scene_unchanged(tmp_path):
    frame = np.rint(scene(X0 + 16)).astype(np.uint8)
    clip = write_frames(tmp_path / "static", [frame] * TAU)
    sample = run(tmp_path, clip, "out", interpolate=4, latent=3)[0]
    np.testing.assert_array_equal(sample.arrays["blur"][0], frame)
    np.testing.assert_array_equal(sample.arrays["sharp"][0], frame)
    for k in range(3):  # latent frames are real source frames
        np.testing.assert_array_equal(sample.arrays["latent"][0, k], frame)
    assert sample.meta["motion_max"] < 0.5


def test_interpolation_is_identical_across_workers(tmp_path):
    frames = [np.rint(scene(X0 + 4 * (k % 9))).astype(np.uint8) for k in range(4 * TAU)]
    clip = write_frames(tmp_path / "clip", frames)
    one = run(tmp_path, clip, "w1", workers=1, interpolate=3, noise_read=(0.01,))
    two = run(tmp_path, clip, "w2", workers=2, interpolate=3, noise_read=(0.01,))
    assert len(one) == len(two) == 4
    names = sorted(p.name for p in (tmp_path / "w1").glob("shard-*.h5"))
    assert len(names) == 2
    for name in names:
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()


def test_motion_measure_alone_changes_no_pixel(tmp_path):
    frames = [np.rint(scene(X0 + STEP * k)).astype(np.uint8) for k in range(TAU)]
    clip = write_frames(tmp_path / "moving", frames)
    plain = run(tmp_path, clip, "plain")[0]
    measured = run(tmp_path, clip, "measured", motion=True)[0]
    np.testing.assert_array_equal(measured.arrays["blur"], plain.arrays["blur"])
    assert_motion_of_the_object(measured.meta)
    assert "motion_max" not in plain.meta


@pytest.mark.parametrize("value", [0, 65])
def test_bad_interpolate_names_the_option(tmp_path, value):
    with pytest.raises(BlursynthError, match="--interpolate"):
        HighspeedConfig(src=(str(tmp_path),), interpolate=value)


def test_reds_recipe_interpolates_16x(tmp_path):
    from pathlib import Path

    from tests.helpers import run_cli

    recipe = Path(__file__).resolve().parents[3] / "recipes" / "nah2019_reds.toml"
    frames = [np.rint(scene(X0 + 2 * k)).astype(np.uint8) for k in range(5)]
    clip = write_frames(tmp_path / "clip", frames)
    result = run_cli("highspeed", "--recipe", recipe, "--src", clip, "--out", tmp_path / "o", "-q", "--workers", "1")
    assert result.exit_code == 0, result.output
    (sample,) = list(iter_samples(tmp_path / "o"))
    assert sample.meta["tau"] == 5 and sample.meta["T"] == 5
    assert 1.0 <= sample.meta["motion_max"] <= 4.0  # 2 px per frame
    np.testing.assert_array_equal(sample.arrays["sharp"][0], frames[2])
