"""Camera-rotation blur from equirectangular panoramas (Argaw et al. 2021).

Argaw et al. ("Restoration of video frames from a single blurred image with
motion understanding", CVPRW 2021) look at a panorama projected onto a sphere
with a virtual camera, rotate the camera from an orientation q0 to
q1 = q0 * dq (dq from Euler angles drawn uniformly), render the frames between
them with quaternion slerp, as many as the rotation is large, and average them
into the blurred image. This module does that (see docs/panorama.md):

* source: :mod:`blursynth.sources.panoramas` finds panoramas (8-bit jpg/png,
  HDR .hdr/.pfm/.exr), checks their headers (readable, 2:1) at plan time and
  reads them in the worker (large JPEGs at 1/2 or 1/4 size; HDR radiance
  checked finite and non-negative there);
* config: :mod:`blursynth.panorama.config` (:class:`PanoramaConfig`);
* discover: :func:`blursynth.panorama.pipeline.discover` finds and checks the sources;
* plan: :mod:`blursynth.panorama.plan` (pure, given the checked panoramas) draws
  each sample's orientation and motion from its own seed and fixes the number
  of frames so that no pixel moves more than ``--max-step`` pixels between two
  frames;
* render: :mod:`blursynth.panorama.render` turns one :class:`PanoramaSpec`
  into blur, sharp and latent frames: every frame is one ``cv2.remap`` of the
  linear panorama (cached per worker) through maps built from the rotated
  camera rays (:class:`blursynth.panorama.geometry.MapBuilder`), accumulated in float32
  linear light and encoded once through the response curve;
  :mod:`blursynth.panorama.torch_render` does the lookups on a GPU;
* write: :func:`synthesize` (:mod:`blursynth.panorama.pipeline`) hands the
  plan to :func:`blursynth.run.engine.run`.

The motion of a sample is ``q(t) = q_start exp(r(t) / 2)`` with
``r(t) = omega0 t + (omega1 - omega0) t^2 / (2 L)`` (time in frame intervals,
rotation vectors in the camera frame of ``q_start``). One frame (``--seq-len 1``)
has ``omega1 = omega0 = log(dq)``: ``q(t) = slerp(q0, q1, t)``, the paper's path.
A sequence of ``L`` frames has an independent ``omega1``: the rotation speed and
axis change smoothly, and frame ``j`` exposes ``t`` in ``[j, j + D]``.
"""

from blursynth.panorama.config import KIND, PanoramaConfig
from blursynth.panorama.pipeline import check_device, discover, synthesize
from blursynth.panorama.plan import PanoramaSpec, frames_per_radian, n_frames_for, plan, plan_sample, working_width
from blursynth.panorama.render import CpuViews, exposure_of, render, render_view

__all__ = [
    "KIND", "CpuViews", "PanoramaConfig", "PanoramaSpec", "check_device", "discover", "exposure_of",
    "frames_per_radian", "n_frames_for", "plan", "plan_sample", "render", "render_view", "synthesize", "working_width",
]
