"""Panorama rotation blur: renders against py360convert and hand-written oracles, end to end via the CLI."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import py360convert
import pytest
import quaternion
from scipy.spatial.transform import Rotation

from blursynth.panorama import geometry as g
from blursynth.panorama import CpuViews, PanoramaConfig, discover, plan, render, render_view
from blursynth.panorama.torch_render import TorchViews
from blursynth.panorama.load import load_panorama
from blursynth.sources.panoramas import BUILTIN_DIR, builtin_panoramas
from blursynth.run.seeds import sample_rng
from blursynth.dataset import Manifest, iter_samples, verify
from blursynth.run.worker import Worker
from tests.helpers import assert_one_line_error, no_partial_output
from tests.helpers.oracles import srgb_decode_8bit, srgb_encode_8bit


def planned(config: PanoramaConfig) -> list:
    """The plan of ``config`` over the panoramas the pipeline discovers for it."""
    return plan(config, discover(config)[0])

REPO = Path(__file__).resolve().parents[3]


# ------------------------------------------------------------------ helpers
def psnr(a, b, peak=255.0):
    return 10 * math.log10(peak ** 2 / float(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def real_sample(name="courtyard.jpg"):
    return cv2.cvtColor(cv2.imread(str(BUILTIN_DIR / name)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def small_pano(tmp_path_factory):
    """The real courtyard panorama, area-downscaled to 256x128 (lossless png)."""
    path = tmp_path_factory.mktemp("pano") / "courtyard_small.png"
    small = cv2.resize(real_sample(), (256, 128), interpolation=cv2.INTER_AREA)
    assert cv2.imwrite(str(path), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return path


def write_float(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2BGR))
    return path


def equirect_of(fn, h, w):
    """A panorama whose pixel (row, col) holds fn(direction of its centre), by the issue's formula."""
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    lon = 2 * np.pi * (cols + 0.5) / w - np.pi
    lat = np.pi / 2 - np.pi * (rows + 0.5) / h
    d = np.stack([np.cos(lat) * np.sin(lon), np.sin(lat), np.cos(lat) * np.cos(lon)], axis=-1)
    return fn(d).astype(np.float32)


def world_rays(q, size, fov):
    """World direction of every pixel of camera q, by the issue's formula (float64)."""
    h, w = size
    f = (w / 2) / math.tan(math.radians(fov) / 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(xs + 0.5 - w / 2) / f, -(ys + 0.5 - h / 2) / f, np.ones_like(xs)], axis=-1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    return rays @ quaternion.as_rotation_matrix(q).T


def q_of(wxyz):
    return quaternion.from_float_array(np.asarray(wxyz, dtype=np.float64))


# --------------------------------------------------------------- geometry
# Two layouts of the padded panorama: one column of seam padding (render_view
# then builds exact maps) and the renderer's own (a quarter of the width on
# each side: maps interpolated from a coarse grid where the error bound allows).
LAYOUTS = {"exact-maps": lambda img: g.pad_equirect(img),
           "grid-maps": lambda img: g.pad_equirect(img, g.PAD, g.seam_pad(img.shape[1]))}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_render_matches_py360convert_e2p_on_the_real_sample(layout):
    img = real_sample().astype(np.float32)
    pano = LAYOUTS[layout](img)
    size, fov = (256, 256), 60.0  # the default camera
    # py360convert spreads the W pixel centres over [-tan(fov/2), tan(fov/2)] (np.linspace), i.e.
    # a focal length of (W-1)/2/tan(fov/2) instead of W/2/tan(fov/2): the fov that gives e2p our focal length.
    fov_e2p = math.degrees(2 * math.atan(math.tan(math.radians(fov) / 2) * (size[1] - 1) / size[1]))
    centre = slice(96, -96)  # the plain fov's 1/256 focal mismatch moves pixels here by <= 1/8 px
    for u, v, roll in [(0, 0, 0), (30, 20, 0), (180, 0, 0), (-179, 10, 0), (-150, -25, 0), (90, 89, 0),
                       (45, -90, 0), (10, 10, 15)]:
        ours = render_view(pano, g.euler_to_quat(math.radians(u), math.radians(v), math.radians(roll)), size, fov)
        # e2p's in-plane rotation turns the other way round
        same_f = py360convert.e2p(img, fov_e2p, u, v, size, in_rot_deg=-roll)
        assert psnr(ours, same_f) >= 50, (u, v, roll)
        if roll == 0:
            plain = py360convert.e2p(img, fov, u, v, size)
            assert psnr(ours[centre, centre], plain[centre, centre]) >= 35, (u, v)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("yaw, pitch, roll", [
    (180, 0, 0),      # the longitude seam down the middle of the image
    (179, 60, 30),    # seam and a tilted horizon
    (0, 90, 0),       # the north pole at the image centre
    (123, -90, 40),   # the south pole
    (-180, 75, 0),    # seam and pole at once
])
def test_seam_and_poles_continue_smoothly(yaw, pitch, roll, layout):
    # A smooth function of direction: any clamped seam or pole shows up as a jump.
    def fn(d):
        return np.stack([0.5 + 0.45 * d[..., 0], 0.5 + 0.45 * d[..., 1], 0.5 + 0.45 * d[..., 2]], axis=-1)

    pano = LAYOUTS[layout](equirect_of(fn, 512, 1024))
    size, fov = (128, 128), 60.0  # small enough a cell for grid maps away from the poles
    q = g.euler_to_quat(math.radians(yaw), math.radians(pitch), math.radians(roll))
    ours = render_view(pano, q, size, fov)[..., :3]
    want = fn(world_rays(q, size, fov))
    assert np.abs(ours - want).max() < 0.01


def test_rotation_about_the_optical_axis_turns_a_pixel_by_theta_r():
    size, fov, r_px, theta = (64, 64), 60.0, 20.0, 0.2
    f = 32 / math.tan(math.radians(30))
    blob = np.array([r_px / f, 0, 1.0]) / math.hypot(r_px / f, 1)  # seen r_px right of centre by q = 1

    def fn(d):
        angle = np.arccos(np.clip(d @ blob, -1, 1))
        return np.repeat(np.exp(-0.5 * (angle / 0.02) ** 2)[..., None], 3, axis=-1)

    pano = g.pad_equirect(equirect_of(fn, 512, 1024))

    def centroid(q):
        img = render_view(pano, q, size, fov)[..., 0].astype(np.float64)
        ys, xs = np.mgrid[0:64, 0:64]
        c = np.array([(xs * img).sum(), (ys * img).sum()]) / img.sum()
        return c - 31.5  # relative to the principal point

    q0 = g.euler_to_quat(0, 0)
    c0 = centroid(q0)
    c1 = centroid(q0 * g.axis_angle("z", theta))
    assert np.hypot(*c0) == pytest.approx(r_px, abs=0.1)
    assert np.hypot(*c1) == pytest.approx(r_px, abs=0.1)
    turned = abs(math.atan2(c1[1], c1[0]) - math.atan2(c0[1], c0[0]))
    assert turned == pytest.approx(theta, abs=0.005)
    assert turned * r_px == pytest.approx(theta * r_px, abs=0.1)  # arc length theta r, in pixels


def test_torch_grid_sample_path_agrees_with_cv2_path(small_pano):
    pano = load_panorama(small_pano, "ldr", "srgb", 256)
    size, fov = (40, 56), 80.0
    qs = [g.euler_to_quat(math.pi, 0.1), g.euler_to_quat(-3.1, 1.45, 0.3), g.euler_to_quat(0.4, -1.5),
          g.euler_to_quat(1.0, 0.2, -0.4)]
    rots = g.rotation_matrix(np.array(qs))
    keep = [True, False, True, True]
    cpu_total, cpu_kept = CpuViews(pano, size, fov).render(rots, keep)
    torch_total, torch_kept = TorchViews(pano, size, fov, device="cpu").render(rots, keep)
    np.testing.assert_allclose(torch_total, cpu_total, atol=1e-3)
    assert cpu_kept.keys() == torch_kept.keys() == {0, 2, 3}
    for i in cpu_kept:
        np.testing.assert_allclose(torch_kept[i], cpu_kept[i], atol=1e-3)
    # the seam view samples wrapped columns, not a clamped border
    want = render_view(pano, qs[0], size, fov)
    np.testing.assert_allclose(torch_kept[0], want, atol=1e-3)


# --------------------------------------------------------------- sampling
def test_draws_follow_the_documented_distribution(small_pano):
    config = PanoramaConfig(src=(str(small_pano),), n=6, size=(48, 32), max_rotation=12, max_pitch=25, seed=9)
    panoramas, skipped = discover(config)
    specs = plan(config, panoramas)
    assert skipped == [] and [s.index for s in specs] == list(range(6))
    for spec in specs:
        rng = sample_rng(9, spec.index)
        yaw, pitch = rng.uniform(-180, 180), rng.uniform(-25, 25)
        euler = rng.uniform(-12, 12, size=3)
        # intrinsic yaw about y, pitch about -x, roll about z (scipy, independently)
        q0 = Rotation.from_euler("YXZ", [yaw, -pitch, 0], degrees=True)
        dq = Rotation.from_euler("YXZ", [euler[0], -euler[1], euler[2]], degrees=True)
        sample = render(spec)
        got0 = Rotation.from_quat(np.roll(sample.meta["q0"], -1))  # scipy wants x, y, z, w
        got1 = Rotation.from_quat(np.roll(sample.meta["q1"], -1))
        assert (got0.inv() * q0).magnitude() < 1e-9
        assert (got1.inv() * q0 * dq).magnitude() < 1e-9
        assert sample.meta["angle_deg"] == pytest.approx(math.degrees(dq.magnitude()), abs=1e-9)
        half = Rotation.from_quat(np.roll(sample.meta["q_sharp"], -1))
        assert (half.inv() * q0 * Rotation.from_rotvec(dq.as_rotvec() / 2)).magnitude() < 1e-9


def test_frame_count_grows_in_proportion_to_the_angle(small_pano):
    config = PanoramaConfig(src=(str(small_pano),), n=40, size=(32, 32), frames_per_degree=3.0, max_rotation=15)
    specs = planned(config)
    for spec in specs:
        theta_deg = math.degrees(np.linalg.norm(spec.omega0))
        assert spec.n_frames[0] == 1 + max(1, math.ceil(3.0 * theta_deg - 1e-9))
    thetas = np.array([math.degrees(np.linalg.norm(s.omega0)) for s in specs])
    gaps = np.array([s.n_frames[0] - 1 for s in specs])
    assert np.all(gaps >= 3.0 * thetas - 1e-9) and np.all(gaps < 3.0 * thetas + 1)
    assert np.corrcoef(thetas, gaps)[0, 1] > 0.999


def test_default_frame_count_keeps_every_step_under_max_step(small_pano):
    size, fov, step = (48, 64), 70.0, 0.5
    config = PanoramaConfig(src=(str(small_pano),), n=3, size=size[::-1], fov=fov, max_step=step, max_rotation=8)
    specs = planned(config)
    h, w = size
    f = (w / 2) / math.tan(math.radians(fov) / 2)
    speed = f + (((w - 1) / 2) ** 2 + ((h - 1) / 2) ** 2) / f  # px per radian, worst axis, worst pixel
    rays = world_rays(q_of([1, 0, 0, 0]), size, fov).reshape(-1, 3)
    for spec in specs:
        theta = float(np.linalg.norm(spec.omega0))
        n = spec.n_frames[0]
        assert n - 1 == math.ceil(theta * speed / step - 1e-9)
        q0 = q_of(spec.q_start)
        q1 = q0 * quaternion.from_rotation_vector(spec.omega0)
        for i in range(n - 1):  # where each pixel's scene point of frame i+1 was in frame i
            qa = quaternion.slerp_evaluate(q0, q1, i / (n - 1))
            qb = quaternion.slerp_evaluate(q0, q1, (i + 1) / (n - 1))
            in_a = quaternion.rotate_vectors(qa.conjugate() * qb, rays)
            xa = f * in_a[:, 0] / in_a[:, 2] - f * rays[:, 0] / rays[:, 2]
            ya = f * in_a[:, 1] / in_a[:, 2] - f * rays[:, 1] / rays[:, 2]
            assert np.hypot(xa, ya).max() <= step * 1.01


# ----------------------------------------------------------------- render
def test_blur_is_the_average_of_independently_rendered_frames(small_pano):
    size, fov = (40, 48), 65.0
    config = PanoramaConfig(src=(str(small_pano),), n=3, size=size[::-1], fov=fov, latent=3, seed=2)
    specs = planned(config)
    for spec in specs:
        sample = render(spec)
        blur, sharp, latent = sample.arrays["blur"][0], sample.arrays["sharp"][0], sample.arrays["latent"][0]
        q0, q1, n = q_of(sample.meta["q0"]), q_of(sample.meta["q1"]), int(sample.meta["n_frames"])
        pano = load_panorama(small_pano, "ldr", "srgb", spec.pano_width)
        frames = [render_view(pano, quaternion.slerp_evaluate(q0, q1, i / (n - 1)), size, fov)[..., :3]
                  for i in range(n)]
        mean = np.mean(np.asarray(frames, dtype=np.float64), axis=0)
        assert np.abs(blur.astype(int) - srgb_encode_8bit(mean)).max() <= 1
        mid = render_view(pano, quaternion.slerp_evaluate(q0, q1, 0.5), size, fov)[..., :3]
        assert np.abs(sharp.astype(int) - srgb_encode_8bit(mid)).max() <= 1
        assert np.abs(latent[0].astype(int) - srgb_encode_8bit(frames[0])).max() <= 1
        assert np.abs(latent[2].astype(int) - srgb_encode_8bit(frames[-1])).max() <= 1
        np.testing.assert_array_equal(latent[1], sharp)
        assert sample.meta["exposure"] == 1.0 and sample.meta["hdr"] == 0
        # the blurred image really is blurred: less detail than the sharp frame
        assert np.abs(np.diff(blur.astype(float), axis=1)).mean() < np.abs(np.diff(sharp.astype(float), axis=1)).mean()


def test_hdr_lights_saturate_into_streaks_within_range(tmp_path):
    def fn(d):
        return np.full(d.shape, 0.5)

    radiance = equirect_of(fn, 128, 256)
    radiance[63:65, 127:129] = 2e4  # a small light straight ahead (lon 0, lat 0)
    path = write_float(tmp_path / "light.hdr", radiance)
    size, fov = (64, 64), 60.0
    config = PanoramaConfig(src=(str(path),), n=1, size=size[::-1], fov=fov, max_rotation=10, latent=0, seed=4)
    (spec,) = planned(config)
    # start so that the mid-exposure camera looks straight at the light
    omega = np.asarray(spec.omega0)
    start = quaternion.from_rotation_vector(-omega / 2)
    spec = dataclasses.replace(spec, q_start=tuple(quaternion.as_float_array(start)))
    sample = render(spec)
    blur, sharp = sample.arrays["blur"][0], sample.arrays["sharp"][0]
    assert blur.dtype == np.uint8 and sharp.dtype == np.uint8
    # exposure: the median luminance (0.5 everywhere but the light) goes to 0.18
    assert sample.meta["exposure"] == pytest.approx(0.18 / 0.5, rel=1e-4)
    grey = srgb_encode_8bit(0.18)
    assert np.abs(blur[0, 0].astype(int) - grey).max() <= 1 and np.abs(sharp[0, 0].astype(int) - grey).max() <= 1
    # the light's track across the exposure, projected by hand
    track = []
    for t in (0.0, 1.0):
        q = start * quaternion.from_rotation_vector(omega * t)
        d = quaternion.rotate_vectors(q.conjugate(), [0, 0, 1.0])
        f = 32 / math.tan(math.radians(30))
        track.append((f * d[0] / d[2] + 31.5, -f * d[1] / d[2] + 31.5))
    length = math.dist(*track)
    saturated = (blur == 255).all(axis=-1)
    assert (sharp[31:33, 31:33] == 255).all()  # the light itself, at the centre
    assert saturated[31:33, 31:33].any()  # no wrap-around where it is brightest
    assert saturated.sum() >= 0.7 * min(length, 64)  # a streak along the track, not a spot
    assert saturated.sum() > 3 * (sharp == 255).all(axis=-1).sum()


def test_exposure_of_real_hdr_puts_the_median_at_middle_grey():
    hdr = next(p for p in builtin_panoramas() if p.suffix == ".hdr")
    config = PanoramaConfig(src=(str(hdr),), n=2, size=(64, 48), latent=0, seed=3)
    specs = planned(config)
    for spec in specs:
        sample = render(spec)
        linear = srgb_decode_8bit(sample.arrays["sharp"][0])
        luma = linear @ np.array([0.2126, 0.7152, 0.0722])
        assert np.median(luma) == pytest.approx(0.18, abs=0.01)
        assert sample.meta["hdr"] == 1 and sample.meta["exposure"] > 0


def test_sequence_mode_follows_the_documented_motion(small_pano):
    size, fov, L, D = (32, 40), 60.0, 3, 0.5
    config = PanoramaConfig(src=(str(small_pano),), n=2, size=size[::-1], fov=fov, seq_len=L, duty=D, latent=2, seed=6)
    specs = planned(config)
    for spec in specs:
        pano = load_panorama(small_pano, "ldr", "srgb", spec.pano_width)
        sample = render(spec)
        meta = sample.meta
        assert sample.arrays["blur"].shape == (L, *size, 3) and sample.arrays["latent"].shape == (L, 2, *size, 3)
        assert meta["q0"].shape == (L, 4) and meta["n_frames"].shape == (L,) and meta["angle_deg"].shape == (L,)
        w0, w1 = meta["omega0"], meta["omega1"]
        start = Rotation.from_quat(np.roll(meta["q0"][0], -1))

        def q_at(t):  # q(t) = q_start exp(r(t)/2), r(t) = w0 t + (w1 - w0) t^2 / (2L)
            r = w0 * t + (w1 - w0) * t * t / (2 * L)
            xyzw = (start * Rotation.from_rotvec(r)).as_quat()
            return quaternion.from_float_array(np.roll(xyzw, 1))

        for j in range(L):
            for key, t in (("q0", j), ("q1", j + D), ("q_sharp", j + D / 2)):
                assert g.angle_between(q_of(meta[key][j]), q_at(t)) < 1e-9
            n = int(meta["n_frames"][j])
            frames = [render_view(pano, q_at(j + D * i / (n - 1)), size, fov)[..., :3] for i in range(n)]
            mean = np.mean(np.asarray(frames, dtype=np.float64), axis=0)
            assert np.abs(sample.arrays["blur"][j].astype(int) - srgb_encode_8bit(mean)).max() <= 1
            assert np.abs(sample.arrays["latent"][j, 1].astype(int) - srgb_encode_8bit(frames[-1])).max() <= 1
            # angular velocity changes smoothly: it varies linearly in r, so consecutive exposures differ little
        assert not np.allclose(w0, w1)


# -------------------------------------------------------------- end to end
def test_builtin_sample_runs_through_the_cli(tmp_path, cli):
    out = tmp_path / "out"
    result = cli("panorama", "--n", 4, "--size", "32x32", "--out", out, "-q", "--workers", 1)
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(out)
    assert manifest.kind == "panorama" and manifest.complete and verify(out) == []
    samples = list(iter_samples(out))
    assert len(samples) == 4
    # the default is one rendition per scene (the .hdr), so a split by source stays clean
    assert {str(s.meta["source"]) for s in samples} == {"courtyard.hdr", "interior.hdr"}
    assert {p.name for p in builtin_panoramas()} >= {"courtyard.jpg", "courtyard.hdr", "interior.jpg", "interior.hdr"}
    required = {"source", "q0", "q1", "angle_deg", "n_frames", "fov_deg", "exposure", "seed", "index"}
    assert required <= set(samples[0].meta)
    assert samples[0].arrays["latent"].shape == (1, 3, 32, 32, 3)
    assert (BUILTIN_DIR / "LICENSE.txt").exists()


def test_same_bytes_for_any_number_of_workers(tmp_path, small_pano, cli):
    shas = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = cli("panorama", "--src", small_pano, "--n", 6, "--size", "32x24", "--shard-size", 2,
                     "--workers", workers, "--seed", 11, "--out", out, "-q")
        assert result.exit_code == 0, result.output
        shas.append([s["sha256"] for s in json.loads((out / "manifest.json").read_text())["shards"]])
    assert len(shas[0]) == 3 and shas[0] == shas[1]
    assert next(iter_samples(tmp_path / "w1")).arrays["blur"].shape == (1, 24, 32, 3)  # --size is WxH

    # resume: a lost shard is remade, byte for byte
    out = tmp_path / "w1"
    (out / "shard-00001.h5").unlink()
    result = cli("panorama", "--src", small_pano, "--n", 6, "--size", "32x24", "--shard-size", 2,
                 "--workers", 1, "--seed", 11, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert [s["sha256"] for s in json.loads((out / "manifest.json").read_text())["shards"]] == shas[0]


@pytest.mark.parametrize("compression", ["gzip", "lzf"])
def test_compressed_shards_hold_the_same_samples_for_any_number_of_workers(tmp_path, small_pano, cli, compression):
    shas, samples = [], []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = cli("panorama", "--src", small_pano, "--n", 6, "--size", "32x24", "--shard-size", 2,
                     "--workers", workers, "--seed", 11, "--compression", compression, "--out", out, "-q")
        assert result.exit_code == 0, result.output
        # lzf says that its bytes may differ, gzip says nothing
        assert ("--compression lzf" in result.output) == (compression == "lzf"), result.output
        shas.append([s["sha256"] for s in json.loads((out / "manifest.json").read_text())["shards"]])
        samples.append(list(iter_samples(out)))
    if compression == "gzip":  # zlib is deterministic: the same files
        assert shas[0] == shas[1]
    for a, b in zip(*samples):
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    assert len(samples[0]) == 6


def test_recipe_sets_defaults_and_flags_win(tmp_path, small_pano, cli):
    out = tmp_path / "out"
    result = cli("panorama", "--recipe", REPO / "recipes" / "argaw2021_panorama.toml", "--src", small_pano,
                 "--n", 2, "--size", "24x24", "--out", out, "-q", "--workers", 1)
    assert result.exit_code == 0, result.output
    config = Manifest.load(out).config
    assert config["size"] == [24, 24]  # the flag won
    assert config["max_rotation"] == 10 and config["fov"] == 60 and config["latent"] == 3


@pytest.fixture
def bad_panoramas(tmp_path, small_pano):
    folder = tmp_path / "bad"
    folder.mkdir()
    cv2.imwrite(str(folder / "square.png"), np.zeros((40, 40, 3), np.uint8))
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    good = np.full((16, 32, 3), 0.5, np.float32)
    write_float(folder / "nan.pfm", np.where(np.arange(32)[:, None] == 5, np.nan, good))
    write_float(folder / "inf.pfm", np.where(np.arange(32)[:, None] == 7, np.inf, good))
    write_float(folder / "negative.pfm", np.where(np.arange(32)[:, None] == 9, -1.0, good))
    return folder


@pytest.mark.parametrize("name, needles", [
    ("square.png", ["square.png", "40x40", "twice the height"]),
    ("broken.jpg", ["broken.jpg", "not a readable image"]),
    ("nan.pfm", ["nan.pfm", "NaN or infinite"]),
    ("inf.pfm", ["inf.pfm", "NaN or infinite"]),
    ("negative.pfm", ["negative.pfm", "negative"]),
])
def test_bad_panoramas_stop_before_writing(tmp_path, bad_panoramas, cli, name, needles):
    out = tmp_path / "out"
    result = cli("panorama", "--src", bad_panoramas / name, "--n", 2, "--size", "16x16", "--out", out, "-q")
    assert_one_line_error(result, *needles)
    assert no_partial_output(out)


@pytest.mark.parametrize("args, needle", [
    (["--n", 0], "--n 0"),
    (["--n", -3], "--n -3"),
    (["--fov", 0], "--fov 0"),
    (["--fov", 180], "--fov 180"),
    (["--fov", 250], "--fov 250"),
    (["--max-rotation", 0], "--max-rotation 0"),
    (["--max-rotation", -5], "--max-rotation -5"),
    (["--duty", 0], "--duty 0"),
    (["--seq-len", 0], "--seq-len 0"),
])
def test_bad_options_stop_before_writing(tmp_path, small_pano, cli, args, needle):
    out = tmp_path / "out"
    base = {"--n": 2}
    base.update(dict(zip(args[::2], args[1::2])))
    flat = [str(x) for kv in base.items() for x in kv]
    result = cli("panorama", "--src", small_pano, *flat, "--size", "16x16", "--out", out, "-q")
    assert_one_line_error(result, needle)
    assert no_partial_output(out)


def test_missing_or_empty_src(tmp_path, cli):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(cli("panorama", "--src", tmp_path / "empty", "--n", 1, "--out", tmp_path / "o"),
                          "no panoramas")
    assert_one_line_error(cli("panorama", "--src", tmp_path / "nope", "--n", 1, "--out", tmp_path / "o"), "nope")
    assert no_partial_output(tmp_path / "o")


def test_exr_without_openexr_is_a_clear_error(tmp_path, cli):
    try:
        import OpenEXR  # noqa: F401
        pytest.skip("OpenEXR is installed here")
    except ImportError:
        pass
    (tmp_path / "room.exr").write_bytes(b"v/1\x01 fake")
    out = tmp_path / "out"
    result = cli("panorama", "--src", tmp_path / "room.exr", "--n", 1, "--out", out)
    assert_one_line_error(result, "room.exr", "OpenEXR")
    assert no_partial_output(out)


def test_cuda_request_without_a_gpu_is_a_clear_error(tmp_path, small_pano, cli):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    out = tmp_path / "out"
    result = cli("panorama", "--src", small_pano, "--n", 1, "--device", "cuda", "--out", out)
    assert_one_line_error(result, "--device cuda")
    assert no_partial_output(out)


def test_skip_bad_lists_the_bad_and_renders_the_rest(tmp_path, bad_panoramas, small_pano, cli):
    # square.png and broken.jpg fail their header check at plan time; the three
    # .pfm files have good headers and fail when a worker loads them. 8 samples
    # over the 4 panoramas left (good, inf, nan, negative): 2 each, so every
    # bad one is loaded and found; the samples of the bad ones are dropped.
    # (tests/blursynth/panorama/test_panorama_scale.py checks render-time skips with 1 and 2 workers)
    (bad_panoramas / "good.png").write_bytes(small_pano.read_bytes())
    out = tmp_path / "out"
    result = cli("panorama", "--src", bad_panoramas, "--n", 8, "--size", "16x16", "--skip-bad", "--out", out,
                 "-q", "--workers", 1, "--shard-size", 2)
    assert result.exit_code == 0, result.output
    manifest = Manifest.load(out)
    assert sorted(s["source"] for s in manifest.skipped) == [
        "broken.jpg", "inf.pfm", "nan.pfm", "negative.pfm", "square.png"]
    assert [str(s.meta["source"]) for s in iter_samples(out)] == ["good.png"] * 2


def test_discovery_ids_and_duplicates(tmp_path, small_pano):
    from blursynth.errors import BlursynthError
    from blursynth.sources.panoramas import discover

    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for rel in ("sub/x.png", "y.png", ".hidden/z.png", "notes.txt"):
        (tmp_path / "a" / rel).write_bytes(small_pano.read_bytes())
    found, skipped = discover([tmp_path / "a"])
    assert [p.id for p in found] == ["sub/x.png", "y.png"] and skipped == []
    assert found[0].size == (256, 128) and found[0].dynamic_range == "ldr"
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.png").write_bytes(small_pano.read_bytes())
    with pytest.raises(BlursynthError, match="same id 'x.png'"):
        discover([tmp_path / "a" / "sub" / "x.png", tmp_path / "b" / "x.png"])


@pytest.mark.parametrize("k", [0, 1, 7])
def test_latent_counts(small_pano, k):
    config = PanoramaConfig(src=(str(small_pano),), n=1, size=(24, 16), latent=k, seed=8)
    (spec,) = planned(config)
    sample = render(spec)
    if k == 0:
        assert "latent" not in sample.arrays
        return
    latent = sample.arrays["latent"]
    assert latent.shape == (1, k, 16, 24, 3)
    np.testing.assert_array_equal(latent[0, k // 2], sample.arrays["sharp"][0])  # the middle one
    if k > 1:
        pano = load_panorama(small_pano, "ldr", "srgb", spec.pano_width)
        first = render_view(pano, q_of(sample.meta["q0"]), (16, 24), spec.fov)[..., :3]
        last = render_view(pano, q_of(sample.meta["q1"]), (16, 24), spec.fov)[..., :3]
        assert np.abs(latent[0, 0].astype(int) - srgb_encode_8bit(first)).max() <= 1
        assert np.abs(latent[0, -1].astype(int) - srgb_encode_8bit(last)).max() <= 1


def test_rendering_band_by_band_gives_the_bytes_of_whole_frames(small_pano, monkeypatch):
    import importlib

    R = importlib.import_module("blursynth.panorama.render")  # the module, not the function it exports
    # low and steep views, so that grids of several steps and exact maps are all banded
    specs = [spec for pitch in (15, 80)
             for spec in planned(PanoramaConfig(src=(str(small_pano),), n=6, size=(96, 72), fov=70.0, latent=3,
                                                seed=5, max_pitch=pitch))]
    runs, counts = [], {}
    for band_bytes in (1 << 30, 1):  # one band per frame; bands of 8 rows
        monkeypatch.setattr(R, "BAND_BYTES", band_bytes)
        worker = Worker()
        runs.append([render(spec, worker) for spec in specs])
        for builder in worker.state("panorama.map_builders", dict).values():
            for step, n in builder.counts.items():
                counts[step] = counts.get(step, 0) + n
    assert counts[0] > 0 and sum(1 for step, n in counts.items() if step and n) >= 2, counts
    for whole, banded in zip(*runs):
        for name in whole.arrays:
            np.testing.assert_array_equal(whole.arrays[name], banded.arrays[name])
