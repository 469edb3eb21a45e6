"""Panorama at SUN360 scale (issue 15): reduced JPEG decode, header-only planning,
render-time HDR checks, --per-panorama, fast maps; each against an oracle written here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from blursynth.errors import BlursynthError
from blursynth.panorama import PanoramaConfig, discover, plan, render
from blursynth.sources import headers
import blursynth.panorama.load as load_module
from blursynth.panorama.load import load_panorama
from blursynth.sources import panoramas as P
from blursynth.dataset import Manifest, iter_samples
from blursynth.run.worker import Worker
from tests.helpers import assert_one_line_error, no_partial_output


def planned(config: PanoramaConfig) -> list:
    """The plan of ``config`` over the panoramas the pipeline discovers for it."""
    return plan(config, discover(config)[0])


REPO = Path(__file__).resolve().parents[3]


def srgb_decode(code):
    """IEC 61966-2-1 inverse transfer function, written out (float64)."""
    v = np.asarray(code, dtype=np.float64) / 255
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def psnr(a, b, peak=1.0):
    return 10 * math.log10(peak ** 2 / float(np.mean((np.asarray(a, np.float64) - b) ** 2)))


def textured_panorama(width: int, seed: int = 0) -> np.ndarray:
    """A photo-like 8-bit RGB panorama: the built-in courtyard scene enlarged, times
    a multiplicative texture with equal contrast (5%) in every octave from 1 to 128
    pixels, the 1/f amplitude spectrum of natural images."""
    h = width // 2
    rng = np.random.default_rng(seed)
    base = cv2.resize(cv2.imread(str(P.BUILTIN_DIR / "courtyard.jpg")), (width, h),
                      interpolation=cv2.INTER_LINEAR).astype(np.float32)
    tex = np.zeros((h, width), np.float32)
    for octave in range(8):
        s = 2 ** octave
        noise = rng.standard_normal((h // s + 2, width // s + 2)).astype(np.float32)
        tex += 0.05 * cv2.resize(noise, (width, h), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_NEAREST)
    bgr = np.clip(base * np.exp(tex)[..., None], 0, 255).astype(np.uint8)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    """A 4552x2276 textured JPEG (half of SUN360's 9104x4552: the same reduction
    ratios for a camera of half the working width)."""
    path = tmp_path_factory.mktemp("big") / "big.jpg"
    assert cv2.imwrite(str(path), cv2.cvtColor(textured_panorama(4552), cv2.COLOR_RGB2BGR),
                       [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


# ------------------------------------------------------------ reduced decode
@pytest.mark.parametrize("width, target, r", [
    (9104, 1394, 4),   # SUN360 at the default camera (256x256, 60 degrees)
    (9104, 2000, 2),
    (9104, 3100, 1),
    (9104, 300, 4),    # 1/8 is never used
    (4552, 698, 4),
    (4552, 1394, 2),
    (1024, 1024, 1),
])
def test_jpeg_reduction_leaves_one_and_a_half_working_widths(width, target, r):
    assert P.jpeg_reduction(width, target) == r
    assert math.ceil(width / r) >= 1.5 * target or r == 1
    if r < 4:  # the next reduction would leave too little
        assert math.ceil(width / (2 * r)) < 1.5 * target


@pytest.mark.parametrize("target, r", [(698, 4), (1400, 2)])
def test_reduced_jpeg_decode_matches_full_decode_then_linear_area_resample(big_jpeg, monkeypatch, target, r):
    # the oracle: full decode -> linearize (the sRGB formula) -> area average in linear light
    full = cv2.cvtColor(cv2.imread(str(big_jpeg)), cv2.COLOR_BGR2RGB)
    linear = srgb_decode(np.arange(256)).astype(np.float32)[full]
    oracle = cv2.resize(linear, (target, target // 2), interpolation=cv2.INTER_AREA)

    flags = []
    real_imread = cv2.imread

    def spy(path, flag=cv2.IMREAD_COLOR):
        flags.append(flag)
        return real_imread(path, flag)

    monkeypatch.setattr(cv2, "imread", spy)
    load_module._padded.cache_clear()
    ours = load_panorama(big_jpeg, "ldr", "srgb", target)
    assert flags == [{4: cv2.IMREAD_REDUCED_COLOR_4, 2: cv2.IMREAD_REDUCED_COLOR_2}[r]
                     | cv2.IMREAD_IGNORE_ORIENTATION]
    pad_x = (ours.shape[1] - oracle.shape[1]) // 2  # the seam columns of the renderer's layout
    assert pad_x == oracle.shape[1] // 4 and ours.shape[0] == oracle.shape[0] + 2
    inner = ours[1:-1, pad_x:-pad_x]
    rgb = inner[..., :3]
    assert rgb.shape == oracle.shape
    # the seam columns continue the panorama across its edges
    np.testing.assert_array_equal(ours[1:-1, :pad_x], inner[:, -pad_x:])
    np.testing.assert_array_equal(ours[1:-1, -pad_x:], inner[:, :pad_x])
    assert psnr(rgb, oracle) >= 40.0
    # the luminance channel is Rec. 709 of the linear RGB
    np.testing.assert_allclose(inner[..., 3], rgb @ np.array([0.2126, 0.7152, 0.0722]), atol=1e-5)


# ------------------------------------------------------------------ headers
@pytest.mark.parametrize("h, w", [(8, 16), (33, 66), (1, 5), (300, 7)])
def test_header_sizes_match_what_opencv_decodes(tmp_path, h, w):
    rng = np.random.default_rng(h * w)
    rgb = (rng.random((h, w, 3)) * 8).astype(np.float32)
    grey = rng.random((h, w)).astype(np.float32)
    assert cv2.imwrite(str(tmp_path / "a.hdr"), rgb)
    assert cv2.imwrite(str(tmp_path / "a.pfm"), rgb)
    assert cv2.imwrite(str(tmp_path / "g.pfm"), grey)
    assert cv2.imwrite(str(tmp_path / "a.jpg"), (rgb * 20).astype(np.uint8))
    assert cv2.imwrite(str(tmp_path / "p.jpg"), (rgb * 20).astype(np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert cv2.imwrite(str(tmp_path / "a.png"), (rgb * 20).astype(np.uint8))
    from PIL import Image
    exif = Image.Exif()
    exif[0x010E] = "x" * 3000  # ImageDescription: a long APP1 segment before the frame header
    Image.fromarray((rgb * 20).astype(np.uint8)).save(tmp_path / "exif.jpg", exif=exif)
    for name, reader in (("a.hdr", headers.radiance_size), ("a.pfm", headers.pfm_size),
                         ("g.pfm", headers.pfm_size), ("a.jpg", headers.jpeg_size), ("p.jpg", headers.jpeg_size),
                         ("exif.jpg", headers.jpeg_size), ("a.png", headers.png_size),
                         ("a.jpg", headers.raster_size), ("a.png", headers.raster_size)):
        decoded = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        assert reader(tmp_path / name) == (decoded.shape[1], decoded.shape[0]), name


def test_builtin_jpegs_header_sizes():
    for path in P.builtin_panoramas():
        if path.suffix == ".jpg":
            decoded = cv2.imread(str(path))
            assert headers.jpeg_size(path) == (decoded.shape[1], decoded.shape[0])


def test_a_png_named_jpg_falls_back_to_pillow(tmp_path):
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((5, 10, 3), np.uint8))
    (tmp_path / "x.jpg").write_bytes((tmp_path / "x.png").read_bytes())
    assert headers.raster_size(tmp_path / "x.jpg") == (10, 5)
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xda garbage")
    with pytest.raises(ValueError, match="not a readable image"):
        headers.raster_size(tmp_path / "junk.jpg")


def test_radiance_header_with_comments_and_exposure_lines(tmp_path):
    cv2.imwrite(str(tmp_path / "a.hdr"), np.ones((4, 8, 3), np.float32))
    data = (tmp_path / "a.hdr").read_bytes()
    data = data.replace(b"#?RADIANCE\n", b"#?RGBE\n# made by hand\nEXPOSURE=2.0\nGAMMA=1.0\n")
    (tmp_path / "b.hdr").write_bytes(data)
    decoded = cv2.imread(str(tmp_path / "b.hdr"), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
    assert decoded is not None and headers.radiance_size(tmp_path / "b.hdr") == (8, 4)


@pytest.mark.parametrize("resolution", [b"+Y 4 +X 8", b"-Y 4 -X 8", b"+Y 4 -X 8", b"+X 8 -Y 4", b"-X 8 +Y 4"])
def test_flipped_or_transposed_radiance_files_are_refused_in_one_line(tmp_path, cli, resolution):
    cv2.imwrite(str(tmp_path / "a.hdr"), np.ones((4, 8, 3), np.float32))
    data = (tmp_path / "a.hdr").read_bytes().replace(b"-Y 4 +X 8", resolution)
    path = tmp_path / "flipped.hdr"
    path.write_bytes(data)
    # OpenCV, which decodes the pixels, cannot read these orientations either
    assert cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR) is None
    with pytest.raises(ValueError, match="orientation"):
        headers.radiance_size(path)
    out = tmp_path / "out"
    result = cli("panorama", "--src", path, "--n", 1, "--size", "8x8", "--out", out, "-q")
    assert_one_line_error(result, "flipped.hdr", "orientation")
    assert no_partial_output(out)


def test_truncated_or_foreign_headers_are_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "a.pfm"), np.ones((4, 8, 3), np.float32))
    data = (tmp_path / "a.pfm").read_bytes()
    (tmp_path / "short.pfm").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated PFM"):
        headers.pfm_size(tmp_path / "short.pfm")
    (tmp_path / "x.hdr").write_bytes(b"P6\n8 4\n255\n" + bytes(96))
    with pytest.raises(ValueError, match="not a Radiance"):
        headers.radiance_size(tmp_path / "x.hdr")
    (tmp_path / "x.pfm").write_bytes(b"P6\n8 4\n255\n" + bytes(96))
    with pytest.raises(ValueError, match="not a PFM"):
        headers.pfm_size(tmp_path / "x.pfm")
    cv2.imwrite(str(tmp_path / "a.hdr"), np.ones((4, 8, 3), np.float32))
    xyze = (tmp_path / "a.hdr").read_bytes().replace(b"32-bit_rle_rgbe", b"32-bit_rle_xyze")
    (tmp_path / "xyze.hdr").write_bytes(xyze)
    with pytest.raises(ValueError, match="xyze"):
        headers.radiance_size(tmp_path / "xyze.hdr")


def test_planning_reads_no_pixels(tmp_path, monkeypatch):
    for i, (h, w) in enumerate([(8, 16), (16, 32), (32, 64)]):
        img = np.full((h, w, 3), 0.25, np.float32)
        cv2.imwrite(str(tmp_path / f"p{i}.hdr"), img)
        cv2.imwrite(str(tmp_path / f"p{i}.pfm"), img)
        cv2.imwrite(str(tmp_path / f"p{i}.jpg"), (img * 255).astype(np.uint8))
    # a NaN HDR passes planning (its header is fine): the worker finds it
    cv2.imwrite(str(tmp_path / "nan.pfm"), np.full((8, 16, 3), np.nan, np.float32))

    def no_decoding(*args, **kwargs):
        raise AssertionError("planning decoded pixels")

    monkeypatch.setattr(cv2, "imread", no_decoding)
    config = PanoramaConfig(src=(str(tmp_path),), n=10, size=(8, 8))
    panoramas, skipped = discover(config)
    specs = plan(config, panoramas)
    assert skipped == [] and len({s.source for s in specs}) == 10
    widths = {s.source: s.pano_width for s in specs}
    # 2 ceil(pi f) for an 8 px wide camera at 60 degrees (f = 4 / tan 30 deg): 44
    assert widths["p2.pfm"] == widths["p2.jpg"] == 44 and widths["p0.hdr"] == 16


# ---------------------------------------------------------- render-time HDR
@pytest.fixture
def mixed_hdr(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = np.full((16, 32, 3), 0.5, np.float32)
    cv2.imwrite(str(folder / "a_good.pfm"), good)
    cv2.imwrite(str(folder / "b_nan.pfm"), np.where(np.arange(32)[:, None] == 5, np.nan, good).astype(np.float32))
    cv2.imwrite(str(folder / "c_negative.pfm"), np.where(np.arange(32)[:, None] == 9, -1.0, good).astype(np.float32))
    return folder


@pytest.mark.parametrize("workers", [1, 2])
def test_bad_hdr_found_at_render_time_is_one_line_error(tmp_path, mixed_hdr, cli, workers):
    out = tmp_path / "out"
    result = cli("panorama", "--src", mixed_hdr, "--n", 6, "--size", "8x8", "--shard-size", 1,
                 "--workers", workers, "--out", out, "-q")
    assert_one_line_error(result)
    line = result.output.strip()
    assert ("b_nan.pfm" in line and "NaN or infinite" in line) or ("c_negative.pfm" in line and "negative" in line)
    assert not Manifest.load(out).complete


def test_bad_hdr_found_at_render_time_is_skipped_with_skip_bad(tmp_path, mixed_hdr, cli):
    shas = []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}"
        result = cli("panorama", "--src", mixed_hdr, "--n", 6, "--size", "8x8", "--shard-size", 1,
                     "--workers", workers, "--out", out, "-q", "--skip-bad")
        assert result.exit_code == 0, result.output
        manifest = Manifest.load(out)
        assert sorted(s["source"] for s in manifest.skipped) == ["b_nan.pfm", "c_negative.pfm"]
        # samples 0, 1 use a_good (6 samples over 3 panoramas), the others are dropped
        assert [(int(s.meta["index"]), str(s.meta["source"])) for s in iter_samples(out)] == \
            [(0, "a_good.pfm"), (1, "a_good.pfm")]
        shas.append([s["sha256"] for s in manifest.shards])
    assert shas[0] == shas[1]


# ------------------------------------------------------------ --per-panorama
def write_panoramas(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    for i in range(count):
        cv2.imwrite(str(folder / f"p{i:02d}.png"), rng.integers(0, 256, (8, 16, 3), dtype=np.uint8))
    return folder


@pytest.mark.parametrize("n, s, k", [(10, 4, 3), (12, 3, 1), (5, 8, 2), (7, 7, 7), (20, 3, 4), (9, 2, 1)])
def test_per_panorama_draws_k_consecutive_samples_from_each_panorama(tmp_path, n, s, k):
    folder = write_panoramas(tmp_path / "p", s)
    specs = planned(PanoramaConfig(src=(str(folder),), n=n, size=(8, 8), per_panorama=k, seed=3))
    used = [spec.source for spec in specs]
    groups = [used[i:i + k] for i in range(0, n, k)]
    # every group of k consecutive samples (the last may be shorter) shares one panorama
    assert all(len(set(grp)) == 1 for grp in groups)
    # groups are spread evenly over the sorted panoramas: group j of G uses floor(j S / G)
    names = sorted(f"p{i:02d}.png" for i in range(s))
    assert [grp[0] for grp in groups] == [names[j * s // len(groups)] for j in range(len(groups))]
    if k == 1:  # the default is the old assignment, sample i -> floor(i S / N)
        assert used == [names[i * s // n] for i in range(n)]
    # the draws of a sample do not depend on K
    base = planned(PanoramaConfig(src=(str(folder),), n=n, size=(8, 8), seed=3))
    assert [(a.yaw_deg, a.omega0) for a in specs] == [(b.yaw_deg, b.omega0) for b in base]


def test_per_panorama_decodes_each_panorama_once_per_group(tmp_path, monkeypatch):
    folder = write_panoramas(tmp_path / "p", 6)
    specs = planned(PanoramaConfig(src=(str(folder),), n=8, size=(8, 8), per_panorama=4, latent=0))
    decoded = []
    real = P.read_image
    monkeypatch.setattr(load_module, "read_image", lambda path, *a, **kw: decoded.append(Path(path).name) or real(path, *a, **kw))
    load_module._padded.cache_clear()
    worker = Worker()
    for spec in specs:
        render(spec, worker)
    assert decoded == [specs[0].source, specs[4].source] and specs[0].source != specs[4].source


def test_per_panorama_same_bytes_for_any_number_of_workers_and_from_a_recipe(tmp_path, cli):
    folder = write_panoramas(tmp_path / "p", 5)
    recipe = tmp_path / "r.toml"
    recipe.write_text('per-panorama = 3\nlatent = 1\n')
    shas = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        result = cli("panorama", "--recipe", recipe, "--src", folder, "--n", 8, "--size", "8x8", "--shard-size", 2,
                     "--workers", workers, "--seed", 5, "--out", out, "-q")
        assert result.exit_code == 0, result.output
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["config"]["per_panorama"] == 3
        shas.append([s["sha256"] for s in manifest["shards"]])
    assert len(shas[0]) == 4 and shas[0] == shas[1]
    sources = [str(s.meta["source"]) for s in iter_samples(tmp_path / "w1")]
    assert sources[:3] == [sources[0]] * 3 and sources[3:6] == [sources[3]] * 3 and sources[0] != sources[3]


def test_per_panorama_must_be_positive():
    with pytest.raises(BlursynthError, match="--per-panorama 0"):
        PanoramaConfig(n=2, per_panorama=0)


# --------------------------------------------------------------------- maps
def test_fast_maps_agree_with_float64_trigonometry_at_sun360_working_width():
    from scipy.spatial.transform import Rotation

    from blursynth.panorama import geometry as g

    size, fov, (ph, pw) = (64, 96), 60.0, (697, 1394)
    builder = g.MapBuilder(size, fov, (ph, pw))
    f = (size[1] / 2) / math.tan(math.radians(fov) / 2)
    ys, xs = np.mgrid[0:size[0], 0:size[1]].astype(np.float64)
    rays = np.stack([(xs + 0.5 - size[1] / 2) / f, -(ys + 0.5 - size[0] / 2) / f, np.ones_like(xs)], axis=-1)
    rotations = list(Rotation.random(12, random_state=4).as_matrix())
    rotations += [Rotation.from_euler("x", a, degrees=True).as_matrix() for a in (-89.9, 89.9)]  # at the poles
    rotations += [Rotation.from_euler("y", 180, degrees=True).as_matrix()]  # straddling the seam
    for rot in rotations:
        rot = rot.astype(np.float32)
        map_x, map_y = (m.copy() for m in builder(rot))
        d = rays @ rot.astype(np.float64).T
        col = pw * (np.arctan2(d[..., 0], d[..., 2]) + np.pi) / (2 * np.pi) - 0.5 + g.PAD
        row = ph * (np.pi / 2 - np.arcsin(d[..., 1] / np.linalg.norm(d, axis=-1))) / np.pi - 0.5 + g.PAD
        dx = (map_x - col + pw / 2) % pw - pw / 2  # the seam: col and col +- W are one place
        assert np.abs(dx).max() < 2e-3 and np.abs(map_y - row).max() < 2e-3
        # inside the padded image, where bilinear sampling needs no border rule
        assert map_x.min() >= 0 and map_x.max() <= pw + 2 * g.PAD - 1
        assert map_y.min() >= 0 and map_y.max() <= ph + 2 * g.PAD - 1


def test_maps_stay_finite_looking_straight_at_a_pole():
    from blursynth.panorama import geometry as g

    builder = g.MapBuilder((33, 33), 90.0, (50, 100))  # odd: the centre pixel's ray is the optical axis
    for pitch in (math.pi / 2, -math.pi / 2):
        map_x, map_y = builder(g.rotation_matrix(g.euler_to_quat(0.3, pitch)))
        assert np.isfinite(map_x).all() and np.isfinite(map_y).all()
        assert abs(map_y[16, 16] - (g.PAD - 0.5 if pitch > 0 else 50 + g.PAD - 0.5)) < 1e-3
        assert 0 <= map_x.min() and map_x.max() <= 101


# ------------------------------------------------------------ loading ahead
def test_a_spare_thread_loads_the_next_panoramas_without_changing_a_byte(tmp_path, monkeypatch):
    import threading

    folder = write_panoramas(tmp_path / "p", 5)
    specs = planned(PanoramaConfig(src=(str(folder),), n=5, size=(8, 8), latent=1, seed=4))
    loaded = []  # (panorama, thread) of every decode
    real = P.read_image
    monkeypatch.setattr(load_module, "read_image", lambda path, *a, **kw: loaded.append(
        (Path(path).name, threading.current_thread().name)) or real(path, *a, **kw))

    def run(threads):
        load_module._padded.cache_clear()
        loaded.clear()
        worker = Worker(threads)
        samples = []
        for i, spec in enumerate(specs):
            worker.upcoming = specs[i + 1:i + 3]  # as the engine tells a worker
            samples.append(render(spec, worker))
        return samples, list(loaded)

    serial, serial_loads = run(1)
    ahead, ahead_loads = run(2)
    for a, b in zip(serial, ahead):
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    # each panorama decoded once either way; with a spare thread all but the first on the loader
    assert sorted(n for n, _ in serial_loads) == sorted(n for n, _ in ahead_loads) == sorted(s.source for s in specs)
    assert all(not t.startswith("blursynth-panorama-loader") for _, t in serial_loads)
    assert [n for n, t in ahead_loads if t.startswith("blursynth-panorama-loader")] == [s.source for s in specs[1:]]


def test_a_bad_panorama_loaded_ahead_fails_only_when_its_turn_comes(tmp_path):
    folder = write_panoramas(tmp_path / "p", 3)
    specs = planned(PanoramaConfig(src=(str(folder),), n=3, size=(8, 8), seed=1))
    (folder / "p01.png").write_bytes((folder / "p01.png").read_bytes()[:40])  # truncated after planning
    load_module._padded.cache_clear()
    worker = Worker(2)
    worker.upcoming = specs[1:]
    first = render(specs[0], worker)  # p01 is loaded ahead meanwhile, and fails there
    assert first.meta["source"] == "p00.png"
    worker.upcoming = specs[2:]
    with pytest.raises(BlursynthError) as info:
        render(specs[1], worker)
    assert "p01.png" in str(info.value) and "\n" not in str(info.value)
