"""The maps for ``cv2.remap``: rotated camera rays -> pixel coordinates in the padded
panorama (:class:`MapBuilder`, exact; :class:`InterpolatedMapBuilder`, on a coarse grid
and upsampled: the renderer's fast path)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from blursynth.panorama.geometry.sphere import PAD, focal_length


def equirect_pixel_affine(pano_hw: tuple[int, int], pad: int = PAD,
                          pad_x: int | None = None) -> tuple[float, float, float, float]:
    """Pixel coordinates in a padded equirect image from a ray's angles.

    ``x = sx atan2(d_x, d_z) + ox`` and ``y = sy acos(d_y) + oy`` with
    ``sx = W / 2 pi``, ``ox = W / 2 - 0.5 + pad_x``, ``sy = H / pi`` and
    ``oy = pad - 0.5`` (``d`` a unit world direction; :func:`direction_to_lonlat`
    and :func:`lonlat_to_equirect` written as one scale and shift per axis).

    Parameters
    ----------
    pano_hw : (int, int)
        ``(H, W)`` of the panorama before padding.
    pad : int
        Rows added above and below by :func:`pad_equirect`.
    pad_x : int, optional
        Columns added on each side (default ``pad``).

    Returns
    -------
    sx, ox, sy, oy : float
    """
    ph, pw = pano_hw
    pad_x = pad if pad_x is None else pad_x
    return pw / (2.0 * np.pi), pw / 2.0 - 0.5 + pad_x, ph / np.pi, pad - 0.5


def pixel_to_grid(scale: float, offset: float, n: int) -> tuple[float, float]:
    """Fold the pixel -> normalized step into an affine map ``x = scale a + offset``.

    ``torch.nn.functional.grid_sample`` with ``align_corners=True`` addresses
    pixel ``x`` of an axis of ``n`` pixels as ``g = 2 x / (n - 1) - 1``, so
    ``g = (2 scale / (n - 1)) a + (2 offset / (n - 1) - 1)``.

    Parameters
    ----------
    scale, offset : float
        The pixel-space map (see :func:`equirect_pixel_affine`).
    n : int
        Pixels along the axis of the (padded) image sampled.

    Returns
    -------
    scale, offset : float
        The same map in normalized coordinates.
    """
    return scale * 2 / (n - 1), offset * 2 / (n - 1) - 1


def refine_angle(angle: np.ndarray, x: np.ndarray, y: np.ndarray, inv_r: np.ndarray | None,
                 scratch: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """One correction step for an approximate ``angle = atan2(y, x)``, in place.

    With ``c = cos(angle) / r``, ``s = sin(angle) / r`` (``r = |(x, y)|``),
    ``y c - x s = sin(atan2(y, x) - angle)``; adding it leaves an error of
    order ``e^3 / 6`` from an error ``e``. OpenCV's vectorized
    ``cartToPolar``/``phase`` are within about 2e-4 radian; ``polarToCart``
    evaluates ``cos``/``sin`` to about 2e-7, so one step brings the angle to
    float32 rounding (measured: 5e-4 px on a 1394-pixel-wide panorama).

    Parameters
    ----------
    angle : ndarray, float32
        The approximate angle; refined in place and returned.
    x, y : ndarray, float32
        The arguments of ``atan2(y, x)``.
    inv_r : ndarray, float32
        ``1 / sqrt(x^2 + y^2)`` (any finite value where ``x = y = 0``).
    scratch : (ndarray, ndarray)
        Two float32 buffers of the same shape.

    Returns
    -------
    ndarray
        ``angle``.
    """
    c, s = scratch
    cv2.polarToCart(inv_r, angle, x=c, y=s)
    np.multiply(y, c, out=c)
    np.multiply(x, s, out=s)
    c -= s
    angle += c
    return angle


class MapBuilder:
    """Builds ``cv2.remap`` maps from a camera to a padded equirect image.

    The world direction of pixel ``(x, y)`` is ``d = R (u(x), v(y), 1)``, the
    camera ray of :func:`camera_rays` before normalization (``atan2`` needs no
    unit vector, and ``|d| = |(u, v, 1)|`` is fixed per pixel). A frame costs
    three ``cv2.addWeighted`` passes (``d_k = R[k, 0] U + R[k, 1] V + R[k, 2]``
    over fixed grids ``U``, ``V``), OpenCV's vectorized ``atan2``
    (``cv2.cartToPolar``, ``cv2.phase``), one :func:`refine_angle` step per
    angle, and two scale-and-shift passes, with no allocation:

    ``map_x = (W / 2 pi) atan2(-d_x, -d_z) + pad_x - 0.5``   (the angle in [0, 2 pi))
    ``map_y = (H / pi) atan2(sqrt(d_x^2 + d_z^2), d_y) + pad - 0.5``

    ``atan2(-d_x, -d_z)`` is the longitude ``atan2(d_x, d_z)`` plus pi, taken
    in [0, 2 pi), and the second angle is the colatitude ``pi / 2 - phi``: these
    are the maps of :func:`equirect_pixel_affine`. Coordinates stay within
    ``[pad_x - 0.5, W - 0.5 + pad_x]`` x ``[pad - 0.5, H - 0.5 + pad]`` (up to the
    refinement's few 1e-4 px past an end, still inside the padding), inside an
    image padded by :func:`pad_equirect`. Fixed-point maps (``cv2.convertMaps``)
    are not used: OpenCV's remap of 4 float channels is several times slower
    with them (docs/benchmarks.md).

    ``pixels`` = ``(columns, rows)`` maps only the rays of those (possibly
    fractional, possibly outside the image) pixel coordinates of the camera,
    a grid of ``[len(rows), len(columns)]``.

    Not thread-safe: the returned maps are views of its buffers, overwritten by
    the next call.
    """

    def __init__(self, size: tuple[int, int], fov_deg: float, pano_hw: tuple[int, int], pad: int = PAD,
                 pad_x: int | None = None, pixels: tuple[np.ndarray, np.ndarray] | None = None):
        self.size = tuple(size)
        h, w = self.size
        f = focal_length(w, float(fov_deg))
        # the pixel columns and rows whose rays are mapped (default: every pixel)
        cols, rows = pixels if pixels is not None else (np.arange(w), np.arange(h))
        u = (np.asarray(cols, dtype=np.float64) + 0.5 - w / 2.0) / f
        v = -(np.asarray(rows, dtype=np.float64) + 0.5 - h / 2.0) / f
        uu, vv = np.meshgrid(u, v)
        self._u = uu.astype(np.float32)
        self._v = vv.astype(np.float32)
        self._inv_norm = (1.0 / np.sqrt(uu * uu + vv * vv + 1.0)).astype(np.float32)  # 1 / |d|
        self._rays = np.stack([self._u.ravel(), self._v.ravel(), np.ones(self._u.size, np.float32)])
        self.pano_hw = tuple(pano_hw)
        self._buf = np.empty((8, *uu.shape), dtype=np.float32)
        sx, ox, sy, oy = equirect_pixel_affine(self.pano_hw, pad, pad_x)
        # sx (lon + pi) + ox - sx pi: the angle in [0, 2 pi) is lon + pi
        self._sx, self._ox = np.float32(sx), ox - sx * np.pi
        self._sy, self._oy = np.float32(sy), np.float32(oy)

    def many(self, rotations: np.ndarray, shifts: np.ndarray) -> np.ndarray:
        """The maps of many rotations at once, ``[n, 2, rows, cols]`` float32
        (``map_x`` then ``map_y`` per rotation; ``shifts[k]`` added to ``map_x``).

        The same steps as :meth:`__call__` on ``[n, rows * cols]`` arrays, so
        that a small grid pays OpenCV's per-call cost once for all rotations.
        """
        rots = np.asarray(rotations, dtype=np.float32).reshape(-1, 3, 3)
        n, shape = len(rots), self._u.shape
        neg_z, neg_x, d_y = (np.matmul(sign * rots[:, row], self._rays)
                             for row, sign in ((2, -1.0), (0, -1.0), (1, 1.0)))
        rho, ang_x, ang_y, c, s = (np.empty_like(neg_z) for _ in range(5))
        inv_norm = np.broadcast_to(self._inv_norm.reshape(1, -1), neg_z.shape).copy()
        cv2.cartToPolar(neg_z, neg_x, magnitude=rho, angle=ang_x)
        cv2.phase(d_y, rho, angle=ang_y)
        refine_angle(ang_y, d_y, rho, inv_norm, (c, s))
        np.maximum(rho, np.float32(1e-30), out=rho)
        np.reciprocal(rho, out=rho)
        refine_angle(ang_x, neg_z, neg_x, rho, (c, s))
        out = np.empty((n, 2, rho.shape[1]), np.float32)
        np.multiply(ang_x, self._sx, out=out[:, 0])
        out[:, 0] += (self._ox + np.asarray(shifts, dtype=np.float64)).astype(np.float32)[:, None]
        np.multiply(ang_y, self._sy, out=out[:, 1])
        out[:, 1] += self._oy
        return out.reshape(n, 2, *shape)

    def __call__(self, rotation: np.ndarray, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Maps ``(map_x, map_y)``, float32 ``[H, W]`` each, for a world <- camera matrix.

        ``shift`` (pixels) is added to ``map_x``: :class:`InterpolatedMapBuilder`
        maps a view turned to longitude 0 and shifts it back.
        """
        rot = np.asarray(rotation, dtype=np.float64)
        neg_z, neg_x, d_y, rho, map_x, map_y, c, s = self._buf
        for out, row, sign in ((neg_z, 2, -1.0), (neg_x, 0, -1.0), (d_y, 1, 1.0)):
            cv2.addWeighted(self._u, sign * rot[row, 0], self._v, sign * rot[row, 1], sign * rot[row, 2], dst=out)
        cv2.cartToPolar(neg_z, neg_x, magnitude=rho, angle=map_x)  # atan2(-d_x, -d_z) in [0, 2 pi)
        cv2.phase(d_y, rho, angle=map_y)  # atan2(rho, d_y): the colatitude, in [0, pi]
        refine_angle(map_y, d_y, rho, self._inv_norm, (c, s))
        # rho = 0 only looking straight at a pole, where the longitude does not
        # matter: keep 1 / rho finite there (the correction stays within 1).
        np.maximum(rho, np.float32(1e-30), out=rho)
        np.reciprocal(rho, out=rho)
        refine_angle(map_x, neg_z, neg_x, rho, (c, s))
        map_x *= self._sx
        map_x += np.float32(self._ox + shift)
        map_y *= self._sy
        map_y += self._oy
        return map_x, map_y


class InterpolatedMapBuilder:
    """The maps of :class:`MapBuilder` from exact values on a coarse grid.

    Maps are smooth away from the poles, so the renderer computes them exactly
    on a grid every ``s`` camera pixels, reaching just past the image on every
    side, and upsamples that grid bilinearly (``cv2.resize`` by the integer
    factor ``s``, float weights): about ``s^2`` times fewer rays, one resize pass
    per frame, and the grids of all the frames of an exposure computed together
    (:meth:`MapBuilder.many`, one OpenCV call per step for all of them). Before
    that, each view is turned about the world's vertical axis so that its
    centre looks at longitude 0; its longitudes are then continuous across the
    image (the seam lies behind the camera), and the turn comes back as a
    constant shift of ``map_x``, which may leave ``[0, W)``: the panorama
    carries :func:`seam_pad` wrapped columns on each side (a quarter of the
    width) for those.

    Error. Bilinear interpolation of a map with second derivatives ``M''`` over
    cells of ``s`` pixels is off by at most about ``s^2 |M''| / 8``. The maps
    scale angles by ``sx = W / 2 pi`` and ``sy = H / pi`` pixels per radian, a
    cell spans ``s / f`` radians, and the longitude's curvature grows like
    ``1 / cos^2(latitude)`` towards a pole. The bound used is
    ``max(sx, sy) (s / f)^2 / (8 cos^2(lat_max))``, ``lat_max`` the largest
    latitude on the grid; over random orientations the exact error stays below
    0.8 of it (tests/blursynth/panorama/test_geometry.py checks this). Each frame takes the
    coarsest step of ``steps`` whose bound is within ``tolerance`` pixels; a
    frame that no step serves, or whose grid does not fit inside the padded
    panorama (a pole in view: longitudes turn by 180 degrees around it; a very
    wide field of view), is mapped exactly (:class:`MapBuilder`). For scale:
    OpenCV's ``remap`` rounds coordinates to 1/32 pixel, and a uniform shift
    of 0.05 pixel changes a sharp 8-bit photo by about 47 dB PSNR.

    Parameters
    ----------
    size : (int, int)
        ``(H, W)`` of the camera.
    fov_deg : float
        Horizontal field of view.
    pano_hw : (int, int)
        ``(H, W)`` of the panorama before padding.
    pad_x : int
        Columns the panorama carries on each side (:func:`seam_pad`).
    steps : tuple of int
        Grid spacings to try, coarsest first.
    tolerance : float
        Largest error bound allowed, in panorama pixels.

    Attributes
    ----------
    counts : dict
        Frames mapped per step (``0``: exactly), for benchmarks and tests.

    Not thread-safe: the maps given are views of its buffers, overwritten by
    the next frame.
    """

    def __init__(self, size: tuple[int, int], fov_deg: float, pano_hw: tuple[int, int], pad_x: int,
                 steps: tuple[int, ...] = (8, 6, 4), tolerance: float = 0.1):
        self.size = tuple(size)
        h, w = self.size
        self.fov = float(fov_deg)
        self.pano_hw = tuple(pano_hw)
        self.pad_x = int(pad_x)
        self.steps = tuple(sorted({int(s) for s in steps}, reverse=True))
        self.tolerance = float(tolerance)
        self.exact = MapBuilder(size, fov_deg, pano_hw, PAD, pad_x)
        self._grids: dict[int, tuple] = {}
        self._bands: dict[tuple, np.ndarray] = {}  # upsampling buffers by (step, rows)
        self._exact_bands: dict[tuple, MapBuilder] = {}  # exact builders by camera rows
        ph, pw = pano_hw
        self._sx = pw / (2.0 * np.pi)
        self._ox = pad_x - 0.5  # map_x = sx (lon + pi) + pad_x - 0.5
        # the grid's x may stray pad_x - 1 from its centre: bilinear sampling then
        # stays within [0, W + 2 pad_x - 1], and no pole lies inside the grid
        # (around a pole, longitudes turn by 180 degrees: W / 2 pixels)
        self._reach = pad_x - 1.0
        self._equator, self._sy = PAD - 0.5 + ph / 2.0, ph / np.pi  # map_y at latitude 0; px per radian
        f = focal_length(w, self.fov)
        self._bound1 = max(self._sx, self._sy) / (8.0 * f * f)  # the bound of s = 1 at the equator
        self.counts = {s: 0 for s in (*self.steps, 0)}

    def _grid(self, s: int):
        """The grid builder of step ``s`` and its offset ``e`` (made on first use)."""
        if s not in self._grids:
            h, w = self.size
            # cv2.resize by the factor s takes output pixel o from source
            # coordinate (o + 0.5) / s - 0.5, so node k lands on output pixel
            # (k + 0.5) s - 0.5. Nodes sit at camera pixels (k + 0.5) s - 0.5 - e,
            # so that output pixel o is camera pixel o - e; e = ceil(s / 2 - 0.5)
            # puts camera pixel 0 at or after node 0 (never clamped), and the
            # nodes run one past the last camera pixel.
            e = math.ceil(s / 2 - 0.5)
            nx, ny = (math.floor((n - 1 + e + 0.5) / s - 0.5) + 2 for n in (w, h))
            cols, rows = ((np.arange(k) + 0.5) * s - 0.5 - e for k in (nx, ny))
            grid = MapBuilder(self.size, self.fov, self.pano_hw, PAD, self.pad_x, pixels=(cols, rows))
            self._grids[s] = (grid, e)
        return self._grids[s]

    def bound(self, s: int, lat):
        """The error bound (pixels) of step ``s`` on grids reaching latitude ``lat`` (radians)."""
        c = np.cos(np.minimum(np.abs(lat), np.pi / 2 - 1e-6))
        return self._bound1 * s * s / (c * c)

    def plan(self, rotations: np.ndarray) -> list:
        """How each of ``rotations`` (``[n, 3, 3]`` world <- camera) is mapped:
        its grid of the coarsest step that serves it, or exactly. The grids of
        all of them are computed here, together; :meth:`band` upsamples one.

        Returns
        -------
        list
            Per rotation, ``(grid maps, index, step)`` or ``(None, rotation)``.
        """
        rots = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
        n = len(rots)
        lon = np.arctan2(rots[:, 0, 2], rots[:, 2, 2])  # longitude of each optical axis
        c, s_ = np.cos(lon), np.sin(lon)
        turn = np.zeros((n, 3, 3))
        turn[:, 0, 0], turn[:, 0, 2], turn[:, 1, 1], turn[:, 2, 0], turn[:, 2, 2] = c, -s_, 1.0, s_, c
        turned = turn @ rots  # the view's centre at longitude 0 ...
        shifts = self._sx * lon  # ... and back: longitude + lon is sx lon pixels to the right
        centre = shifts + self._sx * np.pi + self._ox
        chosen: list = [(None, rot) for rot in rots]
        todo = np.arange(n)
        for s in self.steps:
            if not len(todo):
                break
            maps = self._grid(s)[0].many(turned[todo], shifts[todo])
            flat_x, flat_y = maps[:, 0].reshape(len(todo), -1), maps[:, 1].reshape(len(todo), -1)
            fits = ((flat_x.min(axis=1) >= centre[todo] - self._reach)
                    & (flat_x.max(axis=1) <= centre[todo] + self._reach))
            lat = np.maximum(self._equator - flat_y.min(axis=1), flat_y.max(axis=1) - self._equator) / self._sy
            good = fits & (self.bound(s, lat) <= self.tolerance)
            for j in np.flatnonzero(good):
                chosen[todo[j]] = (maps, j, s)
                self.counts[s] += 1
            todo = todo[fits & ~good]  # a pole or the seam in view: no step serves it
        self.counts[0] += sum(1 for entry in chosen if entry[0] is None)
        return chosen

    def band(self, entry, y0: int, y1: int) -> tuple[np.ndarray, np.ndarray]:
        """Maps ``(map_x, map_y)``, float32 ``[y1 - y0, W]``, of camera rows
        ``[y0, y1)`` of a frame planned by :meth:`plan` (views of buffers that
        the next call overwrites).

        A band upsamples only the grid rows around it: the node rows whose
        positions bracket its rows, so that no output row is clamped. Its values
        are those of the whole frame's upsampling (cv2.resize's weights repeat
        every ``s`` rows).
        """
        maps, j = entry[0], entry[1]
        h, w = self.size
        if maps is None:  # exact: a builder for the band's rows, kept
            if (y0, y1) == (0, h):
                return self.exact(entry[1])
            if (y0, y1) not in self._exact_bands:
                self._exact_bands[(y0, y1)] = MapBuilder(self.size, self.fov, self.pano_hw, PAD, self.pad_x,
                                                         pixels=(np.arange(w), np.arange(y0, y1)))
            return self._exact_bands[(y0, y1)](entry[1])
        s = entry[2]
        _, e = self._grid(s)
        # node k sits on upsampled row k s + (s - 1) / 2, camera row k s + (s - 1) / 2 - e
        k0 = math.floor((y0 + e - (s - 1) / 2) / s)
        k1 = math.ceil((y1 - 1 + e - (s - 1) / 2) / s)
        rows, cols = (k1 - k0 + 1) * s, maps.shape[3] * s
        if (s, rows) not in self._bands:
            self._bands[(s, rows)] = np.empty((2, rows, cols), np.float32)
        out = self._bands[(s, rows)]
        if k1 - k0 + 1 == maps.shape[2]:
            # all the node rows: map_x's rows above map_y's are one contiguous
            # image, and one resize upsamples both (no output row reads across)
            cv2.resize(maps[j].reshape(-1, maps.shape[3]), (cols, 2 * rows), dst=out.reshape(2 * rows, cols),
                       interpolation=cv2.INTER_LINEAR)
        else:
            for axis in (0, 1):
                cv2.resize(maps[j, axis, k0:k1 + 1], (cols, rows), dst=out[axis], interpolation=cv2.INTER_LINEAR)
        crop = (slice(y0 + e - k0 * s, y1 + e - k0 * s), slice(e, e + w))
        return out[0][crop], out[1][crop]

    def frames(self, rotations: np.ndarray):
        """Maps ``(map_x, map_y)``, float32 ``[H, W]`` each, of every world <- camera
        matrix in ``rotations`` (``[n, 3, 3]``), one frame at a time.

        A generator: each frame's maps are views overwritten by the next frame's.
        """
        for entry in self.plan(rotations):
            yield self.band(entry, 0, self.size[0])

    def __call__(self, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps ``(map_x, map_y)``, float32 ``[H, W]`` each, of one world <- camera matrix."""
        return next(self.frames(np.asarray(rotation)[None]))
