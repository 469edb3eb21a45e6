"""Response curves: LUT decode/encode against float64 formulas (sRGB: tests/helpers/oracles.py)."""

import numpy as np
import pytest

from blursynth.errors import BlursynthError
from blursynth.response import parse_response
from tests.helpers.oracles import srgb_decode, srgb_encode

CODES = np.arange(256, dtype=np.uint8)


FORMULAS = {
    "linear": (lambda x: np.clip(x, 0, 1), lambda v: v),
    "gamma": (lambda x: np.clip(x, 0, 1) ** (1 / 2.2), lambda v: v ** 2.2),
    "gamma:1.8": (lambda x: np.clip(x, 0, 1) ** (1 / 1.8), lambda v: v ** 1.8),
    "srgb": (srgb_encode, srgb_decode),
}


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_linearize_matches_formula(name):
    _, decode = FORMULAS[name]
    lin = parse_response(name).linearize(CODES.reshape(16, 16))
    assert lin.dtype == np.float32
    np.testing.assert_allclose(lin.ravel(), decode(CODES / 255.0), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_round_trip_is_identity(name):
    response = parse_response(name)
    image = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    np.testing.assert_array_equal(response.encode(response.linearize(image)), image)
    np.testing.assert_array_equal(response.encode(response.linearize(CODES.reshape(1, -1))).ravel(), CODES)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_encode_matches_exact_rounding(name):
    encode, _ = FORMULAS[name]
    rng = np.random.default_rng(2)
    # Log-uniform linear values cover the shadows, where curves are steep.
    x = np.exp(rng.uniform(np.log(1e-7), 0, 200_000)).astype(np.float32)
    exact = np.rint(255 * encode(x.astype(np.float64)))
    got = parse_response(name).encode(x).astype(np.float64)
    diff = np.abs(got - exact)
    assert diff.max() <= 1
    # Off-by-one only for values within ~0.01 level of a rounding boundary.
    boundary = np.abs(255 * encode(x.astype(np.float64)) % 1 - 0.5) < 0.02
    assert np.all(diff[~boundary] == 0)


def test_encode_scale_saturation_and_bad_values():
    response = parse_response("gamma")
    x = np.array([[0.5, 2.0, -1.0, np.nan, np.inf]], np.float32)
    out = response.encode(x)
    assert out.tolist() == [[round(255 * 0.5 ** (1 / 2.2)), 255, 0, 0, 255]]
    # scale folds a division into the encoder
    acc = np.full((1, 3), 3 * 0.2, np.float32)
    assert response.encode(acc, scale=1 / 3).tolist() == response.encode(np.full((1, 3), 0.2, np.float32)).tolist()


@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (2, 2), (1, 7), (3, 5), (1, 1000)])
def test_encode_bad_values_any_shape_against_float64_oracle(shape):
    # NaN and negatives -> 0, +inf and overflow -> 255 on every OpenCV version and
    # for arrays small enough that OpenCV would read them as a Scalar.
    rng = np.random.default_rng(sum(shape))
    x = rng.uniform(-0.5, 1.5, shape).astype(np.float32)
    specials = np.array([np.nan, -np.inf, np.inf, -1.0, 0.0, 1e30], np.float32)
    flat = x.reshape(-1)
    flat[: min(flat.size, specials.size)] = specials[: flat.size]
    y = np.nan_to_num(flat.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0).clip(0.0, 1.0)
    oracle = np.rint(255.0 * y ** (1 / 2.2)).reshape(shape)
    out = parse_response("gamma").encode(x)
    assert out.shape == shape and out.dtype == np.uint8
    assert np.abs(out.astype(float) - oracle).max() <= 1
    assert (out.reshape(-1)[np.isnan(flat) | (flat <= 0)] == 0).all()
    assert (out.reshape(-1)[flat >= 1.0] == 255).all()


def test_average_of_one_pixel_frames_is_eq1():
    response = parse_response("gamma")
    frames = [np.full((1, 1, 3), v, np.uint8) for v in (10, 200, 90)]
    lin = np.mean([(f / 255.0) ** 2.2 for f in frames], axis=0)
    oracle = np.rint(255 * lin ** (1 / 2.2))
    assert np.abs(response.average(frames).astype(float) - oracle).max() <= 1


def test_crf_file_inverse_table(tmp_path):
    # An inverse CRF (linear value per code) written as 256 numbers.
    table = (np.arange(256) / 255.0) ** 2.0
    path = tmp_path / "crf.txt"
    np.savetxt(path, table)
    response = parse_response(f"crf:{path}")
    np.testing.assert_allclose(response.linearize(CODES.reshape(1, -1)).ravel(), table, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(response.encode(response.linearize(CODES.reshape(1, -1))).ravel(), CODES)
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    exact = np.rint(255 * np.sqrt(x.astype(np.float64)))
    assert np.abs(response.encode(x).astype(float) - exact).max() <= 1


def test_crf_file_two_columns(tmp_path):
    irradiance = np.linspace(0, 1, 1024)
    brightness = irradiance ** (1 / 2.2)
    path = tmp_path / "dorf.csv"
    np.savetxt(path, np.stack([irradiance, brightness], 1), delimiter=",")
    response = parse_response(f"crf:{path}")
    x = np.random.default_rng(3).uniform(0.01, 1, 5000).astype(np.float32)
    ref = parse_response("gamma").encode(x).astype(int)
    assert np.abs(response.encode(x).astype(int) - ref).max() <= 1


@pytest.mark.parametrize("content, match", [
    ("1 2 3", "expected 256 values"),
    ("\n".join(str(v) for v in np.linspace(1, 0, 256)), "non-decreasing"),
    ("\n".join(str(v) for v in np.linspace(0, 2, 256)), r"in \[0, 1\]"),
])
def test_crf_file_errors_name_the_option(tmp_path, content, match):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(BlursynthError, match=match) as info:
        parse_response(f"crf:{path}")
    assert "--response crf:" in str(info.value)


def test_unknown_response_and_missing_file(tmp_path):
    with pytest.raises(BlursynthError, match="--response log"):
        parse_response("log")
    with pytest.raises(BlursynthError, match="cannot read"):
        parse_response(f"crf:{tmp_path / 'nope.txt'}")
    with pytest.raises(BlursynthError, match="--gamma"):
        parse_response("gamma", gamma=0)


@pytest.mark.parametrize("name", ["gamma", "srgb"])
def test_average_is_eq1_against_float64(name):
    encode, decode = FORMULAS[name]
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (37, 23, 3), dtype=np.uint8) for _ in range(5)]  # odd sizes: partial bands
    mean = np.mean([decode(f / 255.0) for f in frames], axis=0)
    exact = 255 * encode(mean)
    got = parse_response(name).average(frames).astype(float)
    near_boundary = np.abs(exact % 1 - 0.5) < 0.01
    assert np.all(got[~near_boundary] == np.rint(exact[~near_boundary]))
    assert np.abs(got - np.rint(exact)).max() <= 1
    linear = np.empty((37, 23, 3), np.float32)
    assert parse_response(name).average(frames, linear_out=linear) is None
    np.testing.assert_allclose(linear, mean, rtol=1e-5, atol=1e-7)
