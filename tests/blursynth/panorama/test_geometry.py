"""blursynth.panorama.geometry step by step, each against a computation written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import quaternion

from blursynth.panorama import geometry as g


def direction_by_hand(col, row, h, w):
    """The issue's formula, in plain math."""
    lon = 2 * math.pi * (col + 0.5) / w - math.pi
    lat = math.pi / 2 - math.pi * (row + 0.5) / h
    return np.array([math.cos(lat) * math.sin(lon), math.sin(lat), math.cos(lat) * math.cos(lon)])


def test_equirect_pixel_directions_by_hand():
    h, w = 4, 8
    for col, row in [(0, 0), (3, 1), (7, 3), (5, 2)]:
        lon, lat = g.equirect_to_lonlat(col, row, h, w)
        np.testing.assert_allclose(g.lonlat_to_direction(lon, lat), direction_by_hand(col, row, h, w), atol=1e-12)
    # Column W/2 - 0.5 (between the two middle pixels) looks straight ahead, row H/2 - 0.5 at the horizon.
    lon, lat = g.equirect_to_lonlat(w / 2 - 0.5, h / 2 - 0.5, h, w)
    np.testing.assert_allclose(g.lonlat_to_direction(lon, lat), [0, 0, 1], atol=1e-12)
    # A quarter turn to the right is +x; the first row is near the north pole (+y).
    np.testing.assert_allclose(g.lonlat_to_direction(*g.equirect_to_lonlat(0.75 * w - 0.5, h / 2 - 0.5, h, w)),
                               [1, 0, 0], atol=1e-12)
    assert g.lonlat_to_direction(*g.equirect_to_lonlat(0, 0, h, w))[1] > 0.9


def test_lonlat_round_trips():
    rng = np.random.default_rng(0)
    d = rng.standard_normal((100, 3))
    lon, lat = g.direction_to_lonlat(d)
    np.testing.assert_allclose(g.lonlat_to_direction(lon, lat), d / np.linalg.norm(d, axis=1, keepdims=True),
                               atol=1e-12)
    col, row = rng.uniform(-0.5, 63.5, 50), rng.uniform(-0.5, 31.5, 50)
    back = g.lonlat_to_equirect(*g.equirect_to_lonlat(col, row, 32, 64), 32, 64)
    np.testing.assert_allclose(back, (col, row), atol=1e-9)


def test_camera_rays_by_hand():
    h, w, fov = 5, 7, 60.0
    f = (w / 2) / math.tan(math.radians(fov) / 2)
    rays = g.camera_rays((h, w), fov).reshape(3, h, w)
    for x, y in [(0, 0), (3, 2), (6, 4), (1, 3)]:
        r = np.array([(x + 0.5 - w / 2) / f, -(y + 0.5 - h / 2) / f, 1.0])
        np.testing.assert_allclose(rays[:, y, x], r / np.linalg.norm(r), atol=1e-6)
    np.testing.assert_allclose(rays[:, 2, 3], [0, 0, 1], atol=1e-7)  # odd size: the centre pixel
    # The image's left edge (x = -0.5) is fov/2 off axis, so pixel 0 is a little less.
    assert math.degrees(math.atan2(-rays[0, 2, 0], rays[2, 2, 0])) == pytest.approx(
        math.degrees(math.atan((w / 2 - 0.5) / f)), abs=1e-5)
    x, y = g.project(rays.reshape(3, -1).T, (h, w), fov)
    np.testing.assert_allclose(x.reshape(h, w), np.broadcast_to(np.arange(w), (h, w)), atol=1e-4)
    np.testing.assert_allclose(y.reshape(h, w), np.broadcast_to(np.arange(h)[:, None], (h, w)), atol=1e-4)


def test_euler_angles_turn_the_camera_as_documented():
    for u, v in [(0.0, 0.0), (0.5, 0.0), (-2.0, 0.3), (3.0, -1.2)]:
        forward = quaternion.rotate_vectors(g.euler_to_quat(u, v), [0, 0, 1])
        np.testing.assert_allclose(forward, [math.cos(v) * math.sin(u), math.sin(v), math.cos(v) * math.cos(u)],
                                   atol=1e-12)
    assert quaternion.rotate_vectors(g.euler_to_quat(0.1, 0), [0, 0, 1])[0] > 0  # yaw > 0 looks right
    assert quaternion.rotate_vectors(g.euler_to_quat(0, 0.1), [0, 0, 1])[1] > 0  # pitch > 0 looks up
    # roll turns the camera about its optical axis: the forward axis stays, "up" tilts
    q = g.euler_to_quat(0, 0, 0.3)
    np.testing.assert_allclose(quaternion.rotate_vectors(q, [0, 0, 1]), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(quaternion.rotate_vectors(q, [0, 1, 0]), [-math.sin(0.3), math.cos(0.3), 0], atol=1e-12)


def test_rotation_angles():
    q0 = g.euler_to_quat(0.3, -0.2, 0.1)
    dq = g.axis_angle([1, 2, 3], 0.25)
    assert g.angle_between(q0, q0 * dq) == pytest.approx(0.25, abs=1e-12)
    assert g.rotation_angle(-dq) == pytest.approx(0.25, abs=1e-12)  # q and -q: one rotation
    assert g.canonical(-dq).w > 0


def test_pad_equirect_continues_the_sphere():
    rng = np.random.default_rng(1)
    img = rng.random((6, 12, 2)).astype(np.float32)
    p = g.pad_equirect(img, 1)
    assert p.shape == (8, 14, 2)
    np.testing.assert_array_equal(p[1:-1, 1:-1], img)
    np.testing.assert_array_equal(p[1:-1, 0], img[:, -1])  # seam: wraps
    np.testing.assert_array_equal(p[1:-1, -1], img[:, 0])
    for col in range(12):  # across the pole: same row, opposite longitude
        np.testing.assert_array_equal(p[0, col + 1], img[0, (col + 6) % 12])
        np.testing.assert_array_equal(p[-1, col + 1], img[-1, (col + 6) % 12])
    p2 = g.pad_equirect(img, 2)
    np.testing.assert_array_equal(p2[0, 2:-2], np.roll(img[1], 6, axis=0))
    with pytest.raises(ValueError, match="even"):
        g.pad_equirect(img[:, :11])


def test_maps_match_projection_by_hand():
    size, fov, ph, pw = (24, 32), 75.0, 40, 80
    f = (size[1] / 2) / math.tan(math.radians(fov) / 2)
    rng = np.random.default_rng(2)
    builder = g.MapBuilder(size, fov, (ph, pw))
    for _ in range(5):
        q = quaternion.from_rotation_vector(rng.normal(size=3))
        map_x, map_y = (m.copy() for m in builder(g.rotation_matrix(q)))
        r = quaternion.as_rotation_matrix(q)
        for y in range(0, size[0], 5):
            for x in range(0, size[1], 7):
                ray = np.array([(x + 0.5 - size[1] / 2) / f, -(y + 0.5 - size[0] / 2) / f, 1.0])
                d = r @ ray
                lon = math.atan2(d[0], d[2])
                lat = math.asin(d[1] / np.linalg.norm(d))
                col = pw * (lon + math.pi) / (2 * math.pi) - 0.5 + g.PAD
                row = ph * (math.pi / 2 - lat) / math.pi - 0.5 + g.PAD
                dx = (map_x[y, x] - col + pw / 2) % pw - pw / 2  # the seam: col and col +- W agree
                assert abs(dx) < 2e-3 and abs(map_y[y, x] - row) < 2e-3


def test_maps_stay_inside_the_padded_image():
    builder = g.MapBuilder((32, 32), 170.0, (50, 100))
    for q in [g.euler_to_quat(math.pi, 0), g.euler_to_quat(0, math.pi / 2), g.euler_to_quat(1, -math.pi / 2, 2)]:
        map_x, map_y = builder(g.rotation_matrix(q))
        assert np.isfinite(map_x).all() and np.isfinite(map_y).all()
        assert map_x.min() >= g.PAD - 0.5 - 1e-3 and map_x.max() <= 100 + g.PAD - 0.5 + 1e-3
        assert map_y.min() >= g.PAD - 0.5 - 1e-3 and map_y.max() <= 50 + g.PAD - 0.5 + 1e-3


def image_motion(size, fov, q_a, q_b):
    """Largest displacement (pixels) of a scene point seen by camera b's pixels, as seen by camera a."""
    rays = g.camera_rays(size, fov).astype(np.float64).T
    world = quaternion.rotate_vectors(q_b, rays)
    in_a = quaternion.rotate_vectors(q_a.conjugate(), world)
    xa, ya = g.project(in_a, size, fov)
    xb, yb = g.project(rays, size, fov)
    return float(np.max(np.hypot(xa - xb, ya - yb)))


def test_max_flow_bound_holds_and_is_reached():
    size, fov, delta = (48, 64), 70.0, 1e-3
    bound = g.max_flow_per_radian(size, fov)
    rng = np.random.default_rng(3)
    for axis in rng.normal(size=(20, 3)):
        q = g.euler_to_quat(*rng.uniform(-1, 1, 3))
        assert image_motion(size, fov, q, q * g.axis_angle(axis, delta)) <= bound * delta * 1.002
    # The worst axis: in the image plane, perpendicular to the corner's direction.
    h, w = size
    corner = np.array([(w - 1) / 2, (h - 1) / 2])
    axis = [-corner[1], corner[0], 0.0]
    q = g.euler_to_quat(0.2, 0.1)
    assert image_motion(size, fov, q, q * g.axis_angle(axis, delta)) >= bound * delta * 0.99


def test_constant_velocity_path_is_slerp():
    q0 = g.euler_to_quat(1.0, 0.2)
    omega = np.array([0.1, -0.05, 0.08])
    q1 = q0 * quaternion.from_rotation_vector(omega)
    for t in (0.0, 0.25, 0.5, 1.0):
        got = g.path_orientation(q0, omega, omega, 1.0, t)
        want = quaternion.slerp_evaluate(q0, q1, t)
        assert g.angle_between(got, want) < 1e-9
    many = g.path_orientation(q0, omega, omega, 1.0, np.array([0.0, 1.0]))
    assert g.angle_between(many[1], q1) < 1e-9


def test_path_turns_no_faster_than_its_speed_bound():
    rng = np.random.default_rng(4)
    for _ in range(20):
        w0, w1 = rng.normal(scale=0.5, size=(2, 3))
        span = 5.0
        q0 = g.euler_to_quat(*rng.uniform(-1, 1, 3))
        ta = rng.uniform(0, 4)
        tb = ta + rng.uniform(0.01, 1)
        turned = g.angle_between(g.path_orientation(q0, w0, w1, span, ta), g.path_orientation(q0, w0, w1, span, tb))
        # the bound: the largest |dr/dt| at either end, times the time
        speed = max(np.linalg.norm(w0 + (w1 - w0) * t / span) for t in (ta, tb))
        assert turned <= speed * (tb - ta) + 1e-9
        assert g.path_max_speed(w0, w1, span, ta, tb) == pytest.approx(speed)


# ------------------------------------------------------- interpolated maps
def float64_maps(rot, size, fov, ph, pw, pad_x):
    """The equirect pixel of every camera pixel, by float64 trigonometry written here."""
    h, w = size
    f = (w / 2) / math.tan(math.radians(fov) / 2)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(xs + 0.5 - w / 2) / f, -(ys + 0.5 - h / 2) / f, np.ones_like(xs)], axis=-1)
    d = rays @ np.asarray(rot, np.float64).T
    col = pw * (np.arctan2(d[..., 0], d[..., 2]) + np.pi) / (2 * np.pi) - 0.5 + pad_x
    row = ph * (np.pi / 2 - np.arcsin(d[..., 1] / np.linalg.norm(d, axis=-1))) / np.pi - 0.5 + g.PAD
    return col, row


@pytest.mark.parametrize("size, fov, pano_hw", [((256, 256), 60.0, (697, 1394)),   # the default camera
                                                ((96, 160), 90.0, (400, 800)),
                                                ((240, 320), 50.0, (1000, 2000))])
def test_grid_maps_stay_within_tolerance_of_float64_trigonometry(size, fov, pano_hw):
    ph, pw = pano_hw
    pad_x = g.seam_pad(pw)
    builder = g.InterpolatedMapBuilder(size, fov, pano_hw, pad_x)
    rng = np.random.default_rng(7)
    rotations = [g.rotation_matrix(g.euler_to_quat(rng.uniform(-math.pi, math.pi), math.radians(p),
                                                   rng.uniform(-0.6, 0.6)))
                 for p in np.concatenate([rng.uniform(-35, 35, 24), rng.uniform(-90, 90, 16), [90, -90]])]
    rotations.append(g.rotation_matrix(g.euler_to_quat(math.pi, 0.0)))  # the seam straight ahead
    # one exposure's frames at once, as the renderer asks for them
    for rot, (map_x, map_y) in zip(rotations, builder.frames(np.stack(rotations))):
        col, row = float64_maps(rot, size, fov, ph, pw, pad_x)
        dx = (map_x - col + pw / 2) % pw - pw / 2  # col and col +- W are one place
        assert np.abs(dx).max() <= builder.tolerance and np.abs(map_y - row).max() <= builder.tolerance
        # every sample inside the padded image: bilinear sampling needs no border rule
        assert map_x.min() >= 0 and map_x.max() <= pw + 2 * pad_x - 1
        assert map_y.min() >= 0 and map_y.max() <= ph + 2 * g.PAD - 1
    # the grid served the low views (the test would pass vacuously on exact maps), the poles were exact
    assert sum(builder.counts[s] for s in builder.steps) >= 10 and builder.counts[0] >= 2


def test_grid_error_bound_holds_and_is_not_loose():
    size, fov, (ph, pw) = (256, 256), 60.0, (697, 1394)
    pad_x = g.seam_pad(pw)
    builder = g.InterpolatedMapBuilder(size, fov, (ph, pw), pad_x, steps=(8,), tolerance=1e9)
    rng = np.random.default_rng(3)
    ratios = []
    for pitch in rng.uniform(-45, 45, 30):  # no pole in view: every frame on the grid
        rot = g.rotation_matrix(g.euler_to_quat(rng.uniform(-3, 3), math.radians(pitch), rng.uniform(-0.5, 0.5)))
        map_x, map_y = builder(rot)
        col, row = float64_maps(rot, size, fov, ph, pw, pad_x)
        err = max(np.abs((map_x - col + pw / 2) % pw - pw / 2).max(), np.abs(map_y - row).max())
        # the largest latitude the grid reaches, here from the exact rows of the image's border
        lat = np.abs(np.pi / 2 - np.pi * (row + 0.5 - g.PAD) / ph).max()
        ratios.append(err / float(builder.bound(8, lat)))
    assert builder.counts[0] == 0 and len(ratios) == 30
    assert max(ratios) <= 1.0 and np.median(ratios) >= 0.2


def test_batched_frames_equal_one_at_a_time():
    size, fov, (ph, pw) = (64, 80), 60.0, (300, 600)
    builder = g.InterpolatedMapBuilder(size, fov, (ph, pw), g.seam_pad(pw))
    rng = np.random.default_rng(5)
    rots = np.stack([g.rotation_matrix(g.euler_to_quat(rng.uniform(-3, 3), rng.uniform(-1.5, 1.5), 0.2))
                     for _ in range(12)])
    together = [(x.copy(), y.copy()) for x, y in builder.frames(rots)]
    for rot, (x, y) in zip(rots, together):
        one_x, one_y = builder(rot)
        np.testing.assert_allclose(one_x, x, atol=1e-3)
        np.testing.assert_allclose(one_y, y, atol=1e-3)


def test_seam_padding_wraps_columns_and_layout_reads_back():
    img = np.arange(6 * 12 * 2, dtype=np.float32).reshape(6, 12, 2)
    p = g.pad_equirect(img, 1, 5)
    assert p.shape == (8, 22, 2)
    np.testing.assert_array_equal(p[1:-1, 5:-5], img)
    np.testing.assert_array_equal(p[1:-1, :5], img[:, -5:])
    np.testing.assert_array_equal(p[1:-1, -5:], img[:, :5])
    np.testing.assert_array_equal(p[0, 5:-5], np.roll(img[0], 6, axis=0))  # across the north pole
    assert g.padded_layout(p.shape) == ((6, 12), 5)
    assert g.seam_pad(1394) == 348
    with pytest.raises(ValueError, match="pad_x"):
        g.pad_equirect(img, 1, 13)
    with pytest.raises(ValueError, match="2:1"):
        g.padded_layout((8, 23, 2))
