"""High-speed video -> blurred/sharp pairs (Kim et al. 2017, Eq. 1).

For a clip X_0, X_1, ... and a draw (tau, T), exposure n averages tau
consecutive frames in linear light and skips the rest of its period T::

    B_n = g( (1/tau) * sum_{j=0}^{tau-1} g^{-1}(X_{nT+j}) ),      tau <= T <= 2 tau - 1

where g is the camera response (``--response``). A list of curves
(``--response gamma,linear``) renders each exposure once per curve from the
same decoded frames: ``blur`` with the first, ``blur_<kind>`` with each further
one, every rendition with its own g (see :func:`render`). The sharp target is the
mid-exposure frame S_n = X_{nT + (tau-1)/2}. The paper writes the mid index as
ceil(tau/2) with 1-based j; with 0-based j that is one frame late, so we use
(tau-1)/2 and therefore need odd tau (even tau has no middle frame).

``--latent K`` keeps K frames spread evenly over the exposure, first and last
included: X_{nT + k(tau-1)/(K-1)}, k = 0..K-1.

A sample is ``--seq-len L`` consecutive exposures. Clips are tiled from frame 0:
sample s of a draw covers exposures n = sL .. sL+L-1; exposures that do not fill
a whole sample at the end of a clip are dropped. See docs/highspeed.md.
"""

from blursynth.highspeed.config import (DEFAULT_FPS, KIND, LOW_FPS, MAX_INTERPOLATE, READAHEAD, HighspeedConfig,
                                        clip_fps, output_size)
from blursynth.highspeed.decode import Decoder, FrameStream
from blursynth.highspeed.pipeline import check_budget, synthesize
from blursynth.highspeed.plan import HighspeedSpec, draw_exposure, frames_needed, plan
from blursynth.highspeed.render import latent_offsets, render

__all__ = [
    "DEFAULT_FPS", "KIND", "LOW_FPS", "MAX_INTERPOLATE", "READAHEAD", "Decoder", "FrameStream", "HighspeedConfig",
    "HighspeedSpec", "check_budget", "clip_fps", "draw_exposure", "frames_needed", "latent_offsets",
    "output_size", "plan", "render", "synthesize",
]
