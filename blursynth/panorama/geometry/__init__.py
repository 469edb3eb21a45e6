"""Sphere geometry for panorama rendering, as a chain of small named steps.

Conventions (docs/panorama.md draws them):

* World frame: x right, y up, z forward.
* An equirectangular image of ``H x W`` pixels has its pixel centre
  ``(col + 0.5, row + 0.5)`` at longitude ``lambda = 2 pi (col + 0.5) / W - pi``
  and latitude ``phi = pi / 2 - pi (row + 0.5) / H``, pointing along
  ``(cos phi sin lambda, sin phi, cos phi cos lambda)``. In OpenCV's pixel
  coordinates (pixel centres on integers) that is ``x = col``, ``y = row``.
* A pinhole camera of ``H x W`` pixels and horizontal field of view ``fov`` has
  focal length ``f = (W / 2) / tan(fov / 2)`` pixels; pixel ``(x, y)`` sees the
  ray ``((x + 0.5 - W/2) / f, -(y + 0.5 - H/2) / f, 1)`` in camera coordinates.
* A unit quaternion ``q`` (``numpy-quaternion``) is the camera's orientation: it
  turns camera rays into world directions, ``d = q r q*``.
* Euler angles ``(yaw, pitch, roll)`` are intrinsic rotations about the camera's
  y (up), -x and z (forward) axes, in that order: positive yaw looks right,
  positive pitch looks up, and ``euler_to_quat(u, v, 0)`` is the view of
  ``py360convert.e2p(img, fov, u, v, ...)``.

The steps: pixel <-> (lon, lat) <-> direction; camera rays; orientation
quaternions and the rotation path of a sample; and the maps for ``cv2.remap``
(:class:`MapBuilder`: rotated rays from two fixed pixel grids, OpenCV's
vectorized ``atan2`` refined by one correction step, scaled to equirect pixel
coordinates; :class:`InterpolatedMapBuilder`: the same maps computed exactly
on a coarse grid and upsampled, the fast path of the renderer).
:func:`pad_equirect` adds the border rows and columns that make bilinear
sampling wrap across the longitude seam and across the poles, so that no
sample is ever clamped.

The steps live in three modules: :mod:`~blursynth.panorama.geometry.sphere`
(pixels, directions, the padded panorama, the camera),
:mod:`~blursynth.panorama.geometry.rotation` (quaternions and the camera path)
and :mod:`~blursynth.panorama.geometry.maps` (the remap maps); this package
gives their names in one place.
"""

from blursynth.panorama.geometry.maps import (InterpolatedMapBuilder, MapBuilder, equirect_pixel_affine, pixel_to_grid,
                                              refine_angle)
from blursynth.panorama.geometry.rotation import (angle_between, as_wxyz, axis_angle, canonical, euler_to_quat,
                                                  from_wxyz, path_max_speed, path_orientation, path_rotvec,
                                                  rotation_angle, rotation_matrix)
from blursynth.panorama.geometry.sphere import (PAD, SEAM_PAD_FRACTION, camera_rays, direction_to_lonlat,
                                                equirect_to_lonlat, focal_length, lonlat_to_direction,
                                                lonlat_to_equirect, max_flow_per_radian, pad_equirect, padded_layout,
                                                project, seam_pad)

__all__ = [
    "PAD", "SEAM_PAD_FRACTION", "InterpolatedMapBuilder", "MapBuilder", "angle_between", "as_wxyz", "axis_angle",
    "camera_rays", "canonical", "direction_to_lonlat", "equirect_pixel_affine", "equirect_to_lonlat",
    "euler_to_quat", "focal_length", "from_wxyz", "lonlat_to_direction", "lonlat_to_equirect",
    "max_flow_per_radian", "pad_equirect", "padded_layout", "path_max_speed", "path_orientation", "path_rotvec",
    "pixel_to_grid", "project", "refine_angle", "rotation_angle", "rotation_matrix", "seam_pad",
]
