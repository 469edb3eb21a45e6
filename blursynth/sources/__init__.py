"""Sources: find, check and read the footage a pipeline synthesizes from.

* :mod:`blursynth.sources.discovery` - the one walker both pipelines use:
  ids relative to the ``--src`` root, the duplicate-id check, probing each
  candidate and the ``--skip-bad`` list;
* :mod:`blursynth.sources.clips` - high-speed clips (frame folders, videos):
  what a clip is, probing, frame decoding;
* :mod:`blursynth.sources.panoramas` - equirectangular panoramas (8-bit,
  .hdr, .pfm, .exr): probing, reading and the per-worker cache of the linear
  panorama.
"""
