"""Helpers every test module may use, imported one way (``from tests.helpers import ...``;
the checkout is on ``sys.path`` through pytest's ``pythonpath``): the repository root,
frames and videos written to tmp folders, one CLI runner and the one-line-error
assertion. Oracles (independent computations) are in :mod:`tests.helpers.oracles`,
datasets built by hand in :mod:`tests.helpers.handmade`."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from blursynth.cli import main

# The checkout: tests/helpers/__init__.py -> tests -> the repository.
REPO = Path(__file__).resolve().parents[2]


def write_frames(folder: Path, frames: list[np.ndarray], ext: str = ".png", name: str = "f{:d}") -> Path:
    """Write RGB uint8 frames as numbered files (numbers not zero-padded: ordering must be numeric)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / (name.format(i) + ext)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder

def write_video(path: Path, frames: list[np.ndarray], fps: float = 240.0) -> Path:
    """A lossless FFV1 .avi of RGB frames."""
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path

def random_frames(n: int, h: int = 12, w: int = 20, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]

def run_cli(*args):
    """Run a ``blursynth`` command in-process; returns click's result (stdout and stderr in ``output``)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

def run_ok(*args):
    """:func:`run_cli` that requires success."""
    result = run_cli(*args)
    assert result.exit_code == 0, result.output
    return result

def assert_one_line_error(result, *words):
    """A user error: non-zero exit, exactly one line of output, no traceback, naming ``words``."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    for word in words:
        assert word in lines[0], (word, lines[0])

def no_partial_output(out: Path) -> bool:
    """True when ``out`` holds no shard and no temporary file (nothing half-written)."""
    return not out.exists() or not any(p for p in out.iterdir() if ".tmp-" in p.name or p.suffix == ".h5")

def train_killed_at(train_call, step: int, monkeypatch) -> None:
    """Run ``train_call()`` and kill it (KeyboardInterrupt) right after it logs ``step``.

    The log line of ``step`` is written first, as a real kill between a step and
    the next checkpoint would leave it.
    """
    import reference_models.train as tr
    real = tr._append_log

    def dying(path, record):
        real(path, record)
        if record.get("step") == step and "loss" in record:
            raise KeyboardInterrupt

    monkeypatch.setattr(tr, "_append_log", dying)
    with pytest.raises(KeyboardInterrupt):
        train_call()
    monkeypatch.setattr(tr, "_append_log", real)


def assert_refused(result, words, out, started):
    """A bad input refused at once: one line naming ``words``, within 30 s, nothing half-written in ``out``."""
    assert_one_line_error(result, *words)
    assert time.monotonic() - started < 30, "a bad input must be answered at once"
    assert no_partial_output(out)
