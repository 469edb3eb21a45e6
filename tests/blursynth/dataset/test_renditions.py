"""Several renditions in one run: ``highspeed --response gamma,linear``.

The oracle decodes the source PNGs itself and applies Kim et al. 2017, Eq. 1
under each curve with its own formulas (written here, not blursynth's tables):

* gamma g: B = 255 * mean((X / 255) ** g) ** (1 / g);
* linear:  B = mean(X) (GoPro's ``blur``: the plain mean of the 8-bit frames);
* sRGB (IEC 61966-2-1): decode, mean, encode.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from PIL import Image

import blursynth.budget as budget
from blursynth.run.engine import RunOptions
from blursynth.errors import BlursynthError
from blursynth.export import export
from blursynth.export.runner import renditions_of
from blursynth.highspeed import HighspeedConfig, synthesize
from blursynth.dataset import Manifest, describe, iter_samples, verify
from tests.helpers import assert_one_line_error, no_partial_output, random_frames, write_frames
from tests.helpers.handmade import make_dataset


def _decode(folder: Path) -> list[np.ndarray]:
    """The clip's frames as RGB float64, read in numeric order by the test itself."""
    files = sorted(folder.glob("*.png"), key=lambda p: int(p.stem[1:]))
    return [cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float64)
            for f in files]


def _srgb_decode(v):
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _srgb_encode(x):
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


CURVES = {
    "gamma": (lambda v: v ** 2.2, lambda x: x ** (1 / 2.2)),
    "linear": (lambda v: v, lambda x: x),
    "srgb": (_srgb_decode, _srgb_encode),
}


def eq1(window: list[np.ndarray], curve: str) -> np.ndarray:
    """Eq. 1 under ``curve``, unrounded 8-bit values."""
    decode, encode = CURVES[curve]
    return 255.0 * encode(np.mean([decode(f / 255.0) for f in window], axis=0))


def run(tmp_path, src, name, response, workers=1, shard_size=2, **config):
    options = RunOptions(out=tmp_path / name, workers=workers, shard_size=shard_size, quiet=True)
    config = {"tau": (3,), "T": "tau", **config}
    return synthesize(HighspeedConfig(src=(str(src),), response=response, **config), options)


@pytest.fixture
def clip(tmp_path):
    return write_frames(tmp_path / "clip", random_frames(18, h=10, w=14, seed=3))


def test_each_rendition_is_eq1_under_its_own_curve(tmp_path, clip):
    run(tmp_path, clip, "out", "gamma,linear,srgb", seq_len=2)
    frames = _decode(clip)
    samples = list(iter_samples(tmp_path / "out"))
    assert len(samples) == 3  # 18 frames, tau = T = 3: 6 exposures, 2 per sample
    for s, sample in enumerate(samples):
        assert set(sample.arrays) == {"blur", "blur_linear", "blur_srgb", "sharp"}
        for n in range(2):
            window = frames[(2 * s + n) * 3:(2 * s + n) * 3 + 3]
            for array, curve in (("blur", "gamma"), ("blur_linear", "linear"), ("blur_srgb", "srgb")):
                diff = np.abs(sample.arrays[array][n].astype(np.float64) - np.rint(eq1(window, curve)))
                assert diff.max() <= 1, (array, diff.max())
            np.testing.assert_array_equal(sample.arrays["sharp"][n], window[1])  # one sharp for all


@pytest.mark.parametrize("extra", [
    {},
    {"noise_shot": (0.01, 0.02), "noise_read": (0.01, 0.01), "saturation": (0.5, 1.0), "jpeg": (80, 90)},
    {"interpolate": 3},
], ids=["plain", "realism", "interpolate"])
def test_each_rendition_is_its_single_curve_run_byte_for_byte(tmp_path, clip, extra):
    both = run(tmp_path, clip, "both", "gamma,linear", resize=(7, 5), **extra)
    gamma = run(tmp_path, clip, "gamma", "gamma", resize=(7, 5), **extra)
    linear = run(tmp_path, clip, "linear", "linear", resize=(7, 5), **extra)
    # A single curve records no list: its config (and fingerprint) is as before lists existed.
    assert "responses" not in gamma.config and gamma.config["response"] == "gamma:2.2"
    assert both.config["responses"] == ["gamma:2.2", "linear"] and both.config["response"] == "gamma:2.2"
    for b, g, li in zip(*(iter_samples(tmp_path / n) for n in ("both", "gamma", "linear")), strict=True):
        np.testing.assert_array_equal(b.arrays["blur"], g.arrays["blur"])
        np.testing.assert_array_equal(b.arrays["blur_linear"], li.arrays["blur"])
        np.testing.assert_array_equal(b.arrays["sharp"], g.arrays["sharp"])


def test_rendition_arrays_are_stored_and_verified_like_blur(tmp_path, clip):
    run(tmp_path, clip, "out", "linear,gamma", latent=3)
    out = tmp_path / "out"
    assert verify(out) == []
    with h5py.File(out / "shard-00000.h5", "r") as f:
        assert f["blur_gamma"].shape == f["blur"].shape == (2, 1, 10, 14, 3)
        assert f["blur_gamma"].chunks == f["blur"].chunks == (1, 1, 10, 14, 3)
        assert f["blur_gamma"].fletcher32 and f["blur_gamma"].dtype == np.uint8
    assert describe(out)["sample_shape"]["blur_gamma"] == [1, 10, 14, 3]
    assert renditions_of(Manifest.load(out).config) == {"blur": "linear", "blur_gamma": "gamma:2.2"}


def test_verify_reports_a_recorded_rendition_missing_from_a_shard(tmp_path):
    config = {"response": "gamma:2.2", "responses": ["gamma:2.2", "linear"], "seq_len": 1}
    ds = make_dataset(tmp_path / "ds", [[{"source": "a", "shape": (1, 6, 8)}]], config=config)
    problems = verify(ds)
    assert len(problems) == 1 and "shard-00000.h5" in problems[0] and "blur_linear" in problems[0]


def test_same_bytes_for_any_worker_count_with_a_list(tmp_path):
    for i in range(3):
        write_frames(tmp_path / "src" / f"c{i}", random_frames(12, h=8, w=10, seed=20 + i))
    one = run(tmp_path, tmp_path / "src", "one", "gamma,linear", workers=1, shard_size=1, tau=(3, 5), T="auto")
    two = run(tmp_path, tmp_path / "src", "two", "gamma,linear", workers=2, shard_size=1, tau=(3, 5), T="auto")
    assert len(one.shards) > 3
    assert [e["sha256"] for e in one.shards] == [e["sha256"] for e in two.shards]


def test_resume_with_another_list_is_refused_and_the_same_list_resumes(tmp_path, clip):
    first = run(tmp_path, clip, "out", "gamma,linear")
    again = run(tmp_path, clip, "out", "gamma,linear")
    assert [e["sha256"] for e in again.shards] == [e["sha256"] for e in first.shards]
    for other in ("gamma", "linear,gamma", "gamma,srgb"):
        with pytest.raises(BlursynthError, match="different config"):
            run(tmp_path, clip, "out", other)


def test_gopro_export_has_blur_and_blur_gamma_with_the_right_pixels(tmp_path, clip):
    run(tmp_path, clip, "ds", "gamma,linear", seq_len=2)
    export(tmp_path / "ds", "gopro", tmp_path / "gopro", workers=1, quiet=True)
    frames = _decode(clip)
    folders = tmp_path / "gopro" / "train" / "clip"
    assert sorted(p.name for p in folders.iterdir()) == ["blur", "blur_gamma", "sharp"]
    for folder, curve in (("blur", "linear"), ("blur_gamma", "gamma")):
        files = sorted((folders / folder).iterdir())
        assert [f.name for f in files] == [f"{i:06d}.png" for i in range(6)]
        for k, f in enumerate(files):
            with Image.open(f) as im:
                got = np.asarray(im.convert("RGB")).astype(np.float64)
            assert np.abs(got - np.rint(eq1(frames[3 * k:3 * k + 3], curve))).max() <= 1, (folder, k)


def test_input_picks_the_rendition_for_single_input_layouts(tmp_path, clip):
    run(tmp_path, clip, "ds", "gamma,linear")
    export(tmp_path / "ds", "paired", tmp_path / "p", input="blur_linear", workers=1, quiet=True)
    samples = list(iter_samples(tmp_path / "ds"))
    inputs = sorted((tmp_path / "p" / "train" / "input").iterdir())
    assert len(inputs) == len(samples)
    for f, sample in zip(inputs, samples):
        with Image.open(f) as im:
            np.testing.assert_array_equal(np.asarray(im), sample.arrays["blur_linear"][0])
    with pytest.raises(BlursynthError, match="--input blur_srgb"):
        export(tmp_path / "ds", "paired", tmp_path / "q", input="blur_srgb", workers=1, quiet=True)


def test_disk_estimate_counts_every_rendition(tmp_path, clip, monkeypatch):
    asked = {}
    monkeypatch.setattr(budget, "check_disk", lambda out, nbytes, what: asked.setdefault(out.name, nbytes))
    run(tmp_path, clip, "one", "gamma")
    run(tmp_path, clip, "two", "gamma,linear")
    # 18 frames, tau = T = 3: 6 single-exposure samples; the list adds one 10x14 RGB frame to each.
    assert asked["two"] - asked["one"] == 6 * 10 * 14 * 3


@pytest.mark.parametrize("response, words", [
    ("gamma,gamma:2.4", ["--response gamma,gamma:2.4", "gamma"]),
    ("linear,bogus", ["--response bogus"]),
    ("gamma,,linear", ["--response gamma,,linear", "empty"]),
])
def test_bad_lists_are_one_line_errors_with_no_output(tmp_path, clip, cli, response, words):
    out = tmp_path / "out"
    result = cli("highspeed", "--src", clip, "--tau", "3", "--response", response, "--out", out, "--quiet")
    assert_one_line_error(result, *words)
    assert no_partial_output(out)


def test_panorama_refuses_a_list_in_one_line(tmp_path, cli):
    result = cli("panorama", "--response", "srgb,linear", "--n", "1", "--out", tmp_path / "p", "--quiet")
    assert_one_line_error(result, "--response srgb,linear", "highspeed only")
    assert no_partial_output(tmp_path / "p")


def test_readers_see_the_renditions(tmp_path, clip):
    import blursynth
    from reference_models.data import ShardIndex

    run(tmp_path, clip, "ds", "gamma,linear")
    sample = blursynth.open_dataset(tmp_path / "ds")[0]
    item = blursynth.torch_dataset(tmp_path / "ds")[0]
    assert sample["blur_linear"].shape == sample["blur"].shape == (1, 10, 14, 3)
    assert tuple(item["blur_linear"].shape) == (1, 3, 10, 14)
    np.testing.assert_allclose(item["blur_linear"].numpy(), np.moveaxis(sample["blur_linear"], -1, -3) / 255.0,
                               atol=1e-7)
    assert len(ShardIndex(tmp_path / "ds")) == 6
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["config"]["responses"] == ["gamma:2.2", "linear"]
