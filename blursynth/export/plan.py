"""Plan an export: which frames go to which split, clip and frame number.

Pure functions from the runs of a dataset's samples
(:meth:`blursynth.dataset.SampleIndex.runs`) to a list of small, frozen tasks.
A task is a run of frames of one clip; the writers turn each task into files.
The plan depends only on the dataset, the split and the selection, never on
the number of workers, so the exported bytes do not either.

A *clip* is one run of consecutive exposures, as :meth:`SampleIndex.runs`
defines it for every consumer: samples of one source and one draw (``repeat``,
``tau``, ``T``) whose exposures follow on (``start`` advances by L·T, see
docs/highspeed.md), so that frame n+1 of an exported clip is the exposure after
frame n, as in GoPro_Large or REDS. A sample that continues nothing (a panorama
sample, or a highspeed sample after a gap left by a selection) is a clip of
its own.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from blursynth.errors import BlursynthError
from blursynth.dataset import SampleRef

# Frames per task: small enough to spread a short dataset over the workers and
# to lose little on a kill, large enough that opening shards is amortized.
TASK_FRAMES = 8


@dataclass(frozen=True)
class Frame:
    """Frame ``t`` of sample ``row`` in shard ``file``, exported as frame ``number`` of its clip."""

    file: str
    row: int
    t: int
    number: int


@dataclass(frozen=True)
class FrameSequence:
    """Consecutive samples exported as one folder / sequence."""

    split: str
    name: str       # safe folder name (see :func:`safe_name`)
    ordinal: int    # position of the clip within its split (REDS / BSD sequence numbers)
    source: str
    samples: tuple[SampleRef, ...]

    @property
    def n_frames(self) -> int:
        return sum(s.seq_len for s in self.samples)


@dataclass(frozen=True)
class Task:
    """A run of frames of one clip: the unit of parallel work and of resume."""

    id: int
    clip: FrameSequence
    frames: tuple[Frame, ...]


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
# The longest clip name. A clip name becomes a folder or the start of a file
# name (``<clip>-000000.png`` and its temporary name while written) and of an
# LMDB key: a file name holds at most 255 bytes and an LMDB key 511, and a
# source id of 400 characters made the export fail half-way (issue 19).
MAX_NAME = 80


def _digest(source: str) -> str:
    """8 hex digits of a source id's SHA-1: what keeps shortened or cleaned names apart."""
    return hashlib.sha1(source.encode()).hexdigest()[:8]


def safe_name(name: str) -> str:
    """A folder / key name made of ``[A-Za-z0-9_-]`` only, at most :data:`MAX_NAME` characters.

    Source ids can hold path separators (``sub/clip.mp4``) or ``..``: they must
    not escape the export folder, and LMDB keys must not hold ``.``, which
    BasicSR's meta_info reader takes as the start of the extension. A longer
    name keeps its start and ends with a hash of the whole id.
    """
    clean = _UNSAFE.sub("_", name).strip("_") or "clip"
    if len(clean) > MAX_NAME:
        clean = f"{clean[:MAX_NAME - 9].rstrip('_-')}-{_digest(name)}"
    return clean


def _unique_names(sources: list[str]) -> dict[str, str]:
    """Safe names for distinct sources; two sources that clean to one name get a hash suffix."""
    base = {s: safe_name(s) for s in sources}
    count: dict[str, int] = {}
    for name in base.values():
        count[name] = count.get(name, 0) + 1
    return {s: b if count[b] == 1 else f"{b}-{_digest(s)}" for s, b in base.items()}


def split_of_sources(sources: list[str], split_doc: dict | None) -> dict[str, str]:
    """Split name of each source: from a split file's ``sources``, or all ``train``."""
    if split_doc is None:
        return {s: "train" for s in sources}
    where = {s: name for name, members in split_doc["sources"].items() for s in members}
    missing = sorted(set(sources) - set(where))
    if missing:
        raise BlursynthError(f"split file: source {missing[0]!r} is in no split; make a new split")
    return {s: where[s] for s in sources}


def plan_clips(runs: list[list[SampleRef]], splits: dict[str, str]) -> list[FrameSequence]:
    """Name each run of consecutive exposures (:meth:`SampleIndex.runs`) as a clip of its split.

    A clip's name is its source's safe name, with ``_NNN`` (the clip's number
    among its source's clips, in the order of ``runs``) when the source gives
    more than one clip.
    """
    names = _unique_names(sorted({run[0].source for run in runs}))
    per_source: dict[str, int] = {}
    for run in runs:
        per_source[run[0].source] = per_source.get(run[0].source, 0) + 1
    seen: dict[str, int] = {}
    ordinals: dict[str, int] = {}
    clips = []
    for run in runs:
        source = run[0].source
        k = seen.get(source, 0)
        seen[source] = k + 1
        name = names[source] if per_source[source] == 1 else f"{names[source]}_{k:03d}"
        split = splits[source]
        clips.append(FrameSequence(split, name, ordinals.get(split, 0), source, tuple(run)))
        ordinals[split] = ordinals.get(split, 0) + 1
    return clips


def plan_tasks(clips: list[FrameSequence], task_frames: int = TASK_FRAMES) -> list[Task]:
    """Cut every clip into tasks of at most ``task_frames`` frames, numbered in order."""
    tasks = []
    for clip in clips:
        frames, number = [], 0
        for sample in clip.samples:
            for t in range(sample.seq_len):
                frames.append(Frame(sample.file, sample.row, t, number))
                number += 1
        for lo in range(0, len(frames), task_frames):
            tasks.append(Task(len(tasks), clip, tuple(frames[lo:lo + task_frames])))
    return tasks
