"""Realism options (noise, saturation, JPEG) against oracles written here (issue 14)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blursynth.run.engine import RunOptions
from blursynth.errors import BlursynthError
from blursynth.highspeed import HighspeedConfig, synthesize
from blursynth.panorama import PanoramaConfig
from blursynth.panorama import synthesize as synthesize_panorama
from blursynth.realism import Realism, degrade_linear
from blursynth.dataset import iter_samples
from tests.helpers import assert_one_line_error, random_frames, run_cli, write_frames


def run_highspeed(tmp_path, src, name, workers=1, **config):
    options = RunOptions(out=tmp_path / name, workers=workers, shard_size=4, quiet=True)
    synthesize(HighspeedConfig(src=(str(src),), **config), options)
    return list(iter_samples(tmp_path / name))


def flat_clip(tmp_path, levels=(40, 128, 200), n=5, h=48, w=48):
    """Frames of three flat horizontal bands at known code values."""
    frame = np.empty((h * len(levels), w, 3), np.uint8)
    for i, level in enumerate(levels):
        frame[i * h:(i + 1) * h] = level
    return write_frames(tmp_path / "flat", [frame] * n)


def test_noise_variance_matches_shot_x_plus_read_squared(tmp_path):
    levels, h = (40, 128, 200), 48
    shot, read = 0.004, 0.01
    samples = run_highspeed(tmp_path, flat_clip(tmp_path, levels, h=h), "noisy", tau=(5,), T="tau",
                            response="linear", noise_shot=(shot,), noise_read=(read,))
    blur = samples[0].arrays["blur"][0].astype(np.float64) / 255.0
    assert samples[0].meta["noise_shot"] == shot and samples[0].meta["noise_read"] == read
    for i, level in enumerate(levels):
        x = level / 255.0
        residual = blur[i * h:(i + 1) * h] - x
        # 8-bit quantization adds a uniform error of variance 1/12 level^2.
        expected = shot * x + read ** 2 + 1.0 / 12 / 255.0 ** 2
        assert abs(residual.mean()) < 0.1 * np.sqrt(expected)
        assert residual.var() == pytest.approx(expected, rel=0.10), (level, residual.var(), expected)


def test_noise_variance_of_the_linear_step(tmp_path):
    """The linear-light step itself, before any quantization, over a range of levels."""
    params = {"noise_shot": 0.02, "noise_read": 0.03}
    levels = np.array([0.3, 0.5, 0.7], np.float32)
    clean = np.repeat(levels[:, None, None], 4000, axis=1).repeat(3, axis=2).astype(np.float32)
    noisy = degrade_linear(clean.copy(), params, seed=7)
    for i, x in enumerate(levels):
        var = (noisy[i] - clean[i]).astype(np.float64).var()
        assert var == pytest.approx(0.02 * x + 0.03 ** 2, rel=0.10)


def moving_spot(n=7, h=24, w=40, step=3, dark=20):
    """A 4x4 clipped (255) spot moving ``step`` px per frame across a dark frame."""
    frames = []
    for k in range(n):
        frame = np.full((h, w, 3), dark, np.uint8)
        x = 4 + step * k
        frame[10:14, x:x + 4] = 255
        frames.append(frame)
    return frames


def test_saturation_matches_rsblur_oracle_on_moving_spot(tmp_path):
    frames = moving_spot()
    clip = write_frames(tmp_path / "spot", frames)
    samples = run_highspeed(tmp_path, clip, "sat", tau=(7,), T="tau", saturation=(0.5, 1.5))
    alpha = samples[0].meta["saturation"]
    assert 0.5 <= alpha <= 1.5
    # Oracle (float64): gamma 2.2 linear mean + alpha * mean clip mask, clipped, encoded.
    stack = np.stack(frames).astype(np.float64)
    linear = np.mean((stack / 255.0) ** 2.2, axis=0)
    mask = np.mean(stack == 255, axis=0)
    expected = 255.0 * np.clip(linear + alpha * mask, 0, 1) ** (1 / 2.2)
    got = samples[0].arrays["blur"][0].astype(np.float64)
    assert np.abs(got - np.rint(expected)).max() <= 1
    # The effect is real: the streak is brighter than the plain average.
    plain = 255.0 * linear ** (1 / 2.2)
    streak = mask[..., 0] > 0
    assert np.all(got[streak] >= np.rint(plain[streak]))
    assert (got[streak] - plain[streak]).mean() > 20
    np.testing.assert_array_equal(got[~streak], np.rint(plain[~streak]))


def test_jpeg_output_is_the_decoded_jpeg_at_the_drawn_quality(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(14, h=32, w=48, seed=3))
    plain = run_highspeed(tmp_path, clip, "plain", tau=(7,), T="tau")
    jpeg = run_highspeed(tmp_path, clip, "jpeg", tau=(7,), T="tau", jpeg=(30, 90))
    assert len(plain) == len(jpeg) == 2
    for p, j in zip(plain, jpeg):
        q = j.meta["jpeg_quality"]
        assert 30 <= q <= 90
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(p.arrays["blur"][0], cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        expected = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(j.arrays["blur"][0], expected)
        np.testing.assert_array_equal(j.arrays["sharp"], p.arrays["sharp"])
        assert not np.array_equal(j.arrays["blur"], p.arrays["blur"])


def test_options_shift_no_other_draw(tmp_path):
    """No-op values give the plain bytes; an option on changes only its own effect."""
    frames = moving_spot(n=21)
    clip = write_frames(tmp_path / "spot", frames)
    base = dict(tau=(5, 7), T="auto", repeats=2, seed=4)
    plain = run_highspeed(tmp_path, clip, "plain", **base)
    noop = run_highspeed(tmp_path, clip, "noop", noise_shot=(0.0,), noise_read=(0.0,), saturation=(0.0,), **base)
    noisy = run_highspeed(tmp_path, clip, "noisy", noise_shot=(0.01,), noise_read=(0.002, 0.02), **base)
    both = run_highspeed(tmp_path, clip, "both", noise_shot=(0.01,), noise_read=(0.002, 0.02),
                         jpeg=(50, 60), saturation=(0.0,), **base)
    assert len(plain) == len(noop) == len(noisy) == len(both) >= 2
    for p, z, n, b in zip(plain, noop, noisy, both):
        for key in ("tau", "T", "start", "seed", "source"):
            assert p.meta[key] == z.meta[key] == n.meta[key] == b.meta[key]
        np.testing.assert_array_equal(z.arrays["blur"], p.arrays["blur"])
        for s in (z, n, b):
            np.testing.assert_array_equal(s.arrays["sharp"], p.arrays["sharp"])
        assert z.meta["saturation"] == 0.0 and z.meta["noise_shot"] == 0.0
        # Turning on JPEG and (no-op) saturation leaves the noise draws unchanged.
        assert n.meta["noise_read"] == b.meta["noise_read"]
        assert not np.array_equal(n.arrays["blur"], p.arrays["blur"])
        q = b.meta["jpeg_quality"]
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(n.arrays["blur"][0], cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        np.testing.assert_array_equal(
            b.arrays["blur"][0], cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


def test_realism_is_identical_across_workers(tmp_path):
    clip = write_frames(tmp_path / "spot", moving_spot(n=28))
    opts = dict(tau=(7,), T="tau", noise_shot=(0.001, 0.01), noise_read=(0.01,), saturation=(0.25, 1.75),
                jpeg=(70, 95))
    one = run_highspeed(tmp_path, clip, "w1", workers=1, **opts)
    two = run_highspeed(tmp_path, clip, "w2", workers=2, **opts)
    for name in sorted(p.name for p in (tmp_path / "w1").glob("shard-*.h5")):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()
    assert len(one) == len(two) == 4


def test_panorama_realism_noop_equals_plain_and_saturates_8bit_clipped_sky(tmp_path):
    pano = np.full((64, 128, 3), 60, np.uint8)
    for x in range(0, 128, 16):
        pano[:, x:x + 5] = 255  # clipped bands, as in an over-exposed 8-bit panorama
    cv2.imwrite(str(tmp_path / "p.png"), pano)

    def run(name, **realism):
        config = PanoramaConfig(src=(str(tmp_path / "p.png"),), n=2, size=(24, 16), max_rotation=5.0,
                                max_pitch=0.0, latent=0, **realism)
        synthesize_panorama(config, RunOptions(out=tmp_path / name, workers=1, quiet=True))
        return list(iter_samples(tmp_path / name))

    plain = run("plain")
    noop = run("noop", noise_shot=(0.0,), noise_read=(0.0,), saturation=(0.0,))
    sat = run("sat", saturation=(1.0,))
    noisy = run("noisy", noise_read=(0.05,))
    for p, z, s, n in zip(plain, noop, sat, noisy):
        np.testing.assert_array_equal(z.arrays["blur"], p.arrays["blur"])
        for other in (z, s, n):
            np.testing.assert_array_equal(other.arrays["sharp"], p.arrays["sharp"])
            assert other.meta["yaw_deg"] == p.meta["yaw_deg"]
        assert s.meta["saturation"] == 1.0 and n.meta["noise_read"] == 0.05
        # Saturation only raises pixels that saw a clipped band, and only up to 255.
        diff = s.arrays["blur"].astype(int) - p.arrays["blur"].astype(int)
        assert diff.min() >= 0
        assert diff.max() > 10  # the bands' blurred edges gain the clipped energy back
        assert diff[p.arrays["blur"] <= 61].max() <= 1  # far from the bands: (almost) no mask
        assert not np.array_equal(n.arrays["blur"], p.arrays["blur"])


@pytest.mark.parametrize("args, words", [
    (["--noise-shot", "-0.1"], ["--noise-shot"]),
    (["--noise-read", "0.1,0.01"], ["--noise-read"]),
    (["--saturation", "1,2,3"], ["--saturation"]),
    (["--jpeg", "0,90"], ["--jpeg"]),
])
def test_bad_realism_option_is_one_line_error(tmp_path, args, words):
    clip = write_frames(tmp_path / "clip", random_frames(7))
    result = run_cli("highspeed", "--src", clip, "--out", tmp_path / "out", *args)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_realism_validation_names_the_option():
    with pytest.raises(BlursynthError, match="--jpeg"):
        Realism(jpeg=(50, 101))
    with pytest.raises(BlursynthError, match="--saturation"):
        Realism(saturation=(1.5, 0.5))


def test_rsblur_recipe_draws_within_its_ranges(tmp_path):
    import tomllib
    from pathlib import Path

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "rim2022_rsblur.toml"
    ranges = tomllib.loads(recipe.read_text())
    clip = write_frames(tmp_path / "clip", moving_spot(n=14))
    result = run_cli("highspeed", "--recipe", recipe, "--src", clip, "--out", tmp_path / "o", "--tau", "7",
                     "--T", "tau", "-q", "--workers", "1")
    assert result.exit_code == 0, result.output
    for sample in iter_samples(tmp_path / "o"):
        for key, option in (("noise_shot", "noise-shot"), ("noise_read", "noise-read"), ("saturation", "saturation")):
            low, high = ranges[option]
            assert low <= sample.meta[key] <= high
