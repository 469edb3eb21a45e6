"""Decode: the frames of a spec's clip, in order, read ahead by a spare thread."""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from blursynth.errors import BadSourceError
from blursynth.highspeed.config import READAHEAD
from blursynth.highspeed.plan import HighspeedSpec
from blursynth.run.worker import Worker
from blursynth.sources.clips import VideoReader, decode_frame


class Decoder:
    """A worker's background decoding thread and the decodes it carries from
    one sample to the next (kept in the :class:`~blursynth.run.worker.Worker`)."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blursynth-decode")
        self.carried: dict = {}

    def close(self):
        """Stop the decoding thread and drop the decodes carried."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.carried = {}


def _video_reader(worker: Worker, path: str, clip_id: str) -> VideoReader:
    # One open video per worker: consecutive specs of a clip continue reading
    # where the last one stopped instead of re-decoding from the start.
    reader = worker.state("highspeed.video", lambda: VideoReader(path, clip_id))
    if (reader.path, reader.clip_id) != (path, clip_id):
        worker.drop("highspeed.video")
        reader = worker.state("highspeed.video", lambda: VideoReader(path, clip_id))
    return reader


class FrameStream:
    """Frames of a spec's clip (absolute indices), decoded once each, in order.

    Parameters
    ----------
    spec : HighspeedSpec
        The sample whose clip is read.
    worker : Worker
        How many threads may decode, and where the open video and the decodes
        ahead are kept between samples.
    """

    def __init__(self, spec: HighspeedSpec, worker: Worker):
        self.spec, self.worker = spec, worker
        self.video = _video_reader(worker, spec.path, spec.source) if spec.stored_as == "video" else None

    def stream(self, indices: list[int]):
        """Yield the frames at ``indices`` in order.

        When the worker has a spare CPU thread (``worker.threads`` > 1), a
        background thread decodes up to ``READAHEAD`` frames ahead while the
        caller averages and writes, so decoding never waits for end-of-exposure
        work. It reads on into the first frames of the clip's next sample
        (``spec.ahead``); those decodes are kept in the worker for its next
        ``render`` call. Reads stay sequential (one thread), as videos need.
        """
        if self.worker.threads < 2:
            for k in indices:
                yield self.read(k)
            return
        decoder = self.worker.state("highspeed.decoder", Decoder)
        carried, decoder.carried = decoder.carried, {}
        wanted = iter(indices + self.spec.ahead_indices)
        pending = deque()

        def request():
            k = next(wanted, None)
            if k is not None:
                future = carried.pop((self.spec.path, k), None) or decoder.pool.submit(self.read, k)
                pending.append((k, future))

        for _ in range(READAHEAD):
            request()
        for i in range(len(indices)):
            _, future = pending.popleft()
            request()
            if i == len(indices) - 1:  # what is still in flight belongs to the next sample
                decoder.carried = {(self.spec.path, k): f for k, f in pending}
            yield future.result()

    def read(self, k: int) -> np.ndarray:
        """Decode frame ``k`` of the clip (BGR uint8), checking its size."""
        spec = self.spec
        if self.video is not None:
            frame = self.video.read(k)
            where = f"{spec.path} frame {k}"
        else:
            where = str(Path(spec.path) / spec.files[k - spec.start])
            frame = decode_frame(where, spec.source)
        if (frame.shape[1], frame.shape[0]) != spec.size:
            raise BadSourceError(spec.source, f"{where}: frame size {frame.shape[1]}x{frame.shape[0]} "
                                              f"differs from the clip's {spec.size[0]}x{spec.size[1]}")
        return frame
