"""The trusted test set that ``validate`` scores a dataset on: one the dataset did not make.

Three origins, all ending as a blursynth dataset folder so that one evaluation
(:func:`reference_models.evaluate.evaluate`) scores every one of them, a video
model online over the consecutive frames of each clip included:

* **built in** (no ``--test``): the reference test set of
  :func:`reference_models.sample_data.reference_test_set`, with blur made as
  the validated data was (its manifest's ``kind``: Eq. 1 averaging for
  highspeed data, Slerp rotations for panorama data);
* **a blursynth dataset** (``--test T`` with a ``manifest.json``), scored whole;
* **folders of real blurred/sharp pairs** (``--test T`` otherwise), in the
  layouts that ``blursynth export`` writes and that GoPro_Large, RealBlur,
  RSBlur and BasicSR-style test sets come in (docs/export.md):

  - GoPro_Large: ``T/[test/]<clip>/{blur,blur_gamma,...,sharp}/NNNNNN.png``;
  - BasicSR paired folders: ``T/[test/]{input,target}/<clip>-<NNNNNN>.png``
    (also ``blur``/``sharp`` and ``lq``/``gt`` as the two sides), identical
    names on both sides.

  :func:`read_pair_folders` is the one reader of those layouts;
  :func:`write_pairs` turns what it found into a dataset (one sample per frame
  pair, ``seq_len`` 1; the frames of one clip numbered n, n+1, … chain into a
  run of consecutive exposures, as highspeed samples do).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from blursynth.errors import BadSourceError, BlursynthError
from blursynth.dataset import MANIFEST, Manifest, Sample, write_dataset
from blursynth.sources.clips import FRAME_EXTS, decode_frame
from blursynth.sources.discovery import walk
from blursynth.sources.headers import FRAME_PIXELS, check_pixels, raster_size

__all__ = ["BLUR_SIDES", "PairClip", "SHARP_SIDES", "TestSet", "open_test_set", "read_pair_folders", "write_pairs"]

# The two sides of a pair folder, in order of preference: GoPro's linear ``blur``
# first (published GoPro figures use it), then its other renditions (``blur_gamma``…).
BLUR_SIDES = ("blur", "input", "lq")
SHARP_SIDES = ("sharp", "target", "gt")
PAIRS_KIND = "pairs"
# A frame's name: a clip prefix, then its number (``GOPR0384_11_00-000012``, ``000012``, ``scene3_blur_7``).
_NAMED = re.compile(r"^(?P<clip>.*?)[-_]?(?P<number>\d+)$")


@dataclass(frozen=True)
class TestSet:
    """A test set ready to score.

    Attributes
    ----------
    path : Path
        A blursynth dataset folder.
    label : str
        What it is, for the report (``built-in reference test set (...)``, ``T``).
    builtin : bool
        The built-in reference test set.
    """

    path: Path
    label: str
    builtin: bool = False


@dataclass(frozen=True)
class PairClip:
    """The frame pairs of one source of a pair-folder test set.

    Attributes
    ----------
    source : str
        The clip's id: the pair folder's path relative to T, plus the clip
        prefix of the file names when they carry one.
    blur, sharp : tuple of Path
        Paired files, in frame order.
    numbers : tuple of int
        Frame numbers (consecutive numbers are consecutive exposures).
    size : (int, int)
        ``(W, H)`` of every frame.
    """

    source: str
    blur: tuple[Path, ...]
    sharp: tuple[Path, ...]
    numbers: tuple[int, ...]
    size: tuple[int, int]


def _frame_size(path: Path, source: str) -> tuple[int, int]:
    """A frame's size from its header, refused before any decode beyond the frame pixel limit."""
    try:
        size = raster_size(path)
        check_pixels(size, FRAME_PIXELS)
    except OSError as exc:
        raise BadSourceError(source, f"{path}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise BadSourceError(source, f"{path}: {exc}") from None
    return size


def _sides(children: list[str]) -> tuple[str, str] | None:
    """The (blurred, sharp) sub-folders of a pair folder, or None."""
    sharp = next((s for s in SHARP_SIDES if s in children), None)
    blurred = [b for b in BLUR_SIDES if b in children] + sorted(c for c in children if c.startswith("blur_"))
    return (blurred[0], sharp) if sharp and blurred else None


def read_pair_folders(root: str | Path) -> tuple[list[PairClip], str]:
    """Find the blurred/sharp pair folders under ``root`` (GoPro_Large or BasicSR layout).

    A pair folder is one with a sharp side (``sharp``, ``target`` or ``gt``)
    and a blurred side (``blur``, ``input``, ``lq`` or ``blur_*``, the first
    of these found); files are paired by identical names. When ``root`` has a
    ``test`` sub-folder holding pair folders, only it is read.

    Returns
    -------
    clips : list of PairClip
        One per source, sorted by source.
    what : str
        A description (layout, sides read, counts).

    Raises
    ------
    BlursynthError
        No pair folder, a file on one side without its pair, a pair of two
        sizes, a frame over the pixel limit or that cannot be read, or two
        frames of one clip with the same number.
    """
    root = Path(root)
    folders = {rel: (folder, files) for folder, rel, files in walk(root)}
    children: dict[str, list[str]] = {}
    for rel in folders:
        if rel != ".":
            parent, _, name = rel.rpartition("/")
            children.setdefault(parent or ".", []).append(name)
    pairs = {rel: sides for rel in folders if (sides := _sides(children.get(rel, []))) is not None}
    if any(rel == "test" or rel.startswith("test/") for rel in pairs):
        pairs = {rel: sides for rel, sides in pairs.items() if rel == "test" or rel.startswith("test/")}
    if not pairs:
        raise BlursynthError(f"--test {root}: neither a blursynth dataset (no {MANIFEST}) nor folders of "
                             f"blurred/sharp pairs ({'|'.join(BLUR_SIDES)}/ beside {'|'.join(SHARP_SIDES)}/, "
                             "as 'blursynth export --format gopro|paired' writes them)")
    clips: list[PairClip] = []
    used = set()
    for rel, (blurred, sharp) in sorted(pairs.items()):
        used.add(f"{blurred}/ and {sharp}/")
        clips.extend(_clips_of(root, rel, blurred, sharp, folders))
    n = sum(len(c.numbers) for c in clips)
    return clips, f"{n} frame pairs of {len(clips)} sources, from {', '.join(sorted(used))}"


def _clips_of(root: Path, rel: str, blurred: str, sharp: str, folders: dict) -> list[PairClip]:
    """The clips of one pair folder: files grouped by their clip prefix, in frame order."""
    def side(name: str) -> tuple[Path, list[str]]:
        key = name if rel == "." else f"{rel}/{name}"
        folder, files = folders[key]
        return folder, [f for f in files if Path(f).suffix.lower() in FRAME_EXTS]

    (blur_dir, blur_files), (sharp_dir, sharp_files) = side(blurred), side(sharp)
    lone = sorted(set(blur_files) ^ set(sharp_files))
    if lone:
        where = blur_dir if lone[0] in blur_files else sharp_dir
        other = sharp_dir if where == blur_dir else blur_dir
        raise BlursynthError(f"--test: {where / lone[0]} has no pair of the same name in {other}"
                             + (f" ({len(lone) - 1} more unpaired)" if len(lone) > 1 else ""))
    groups: dict[str, list[tuple[int, str]]] = {}
    for name in sorted(blur_files):
        match = _NAMED.match(Path(name).stem)
        clip, number = (match["clip"], int(match["number"])) if match else (Path(name).stem, 0)
        groups.setdefault(clip, []).append((number, name))
    base = "" if rel == "." else rel
    clips = []
    for clip, members in sorted(groups.items()):
        members.sort()
        source = "/".join(p for p in (base, clip) if p) or root.name
        for (a, name_a), (b, name_b) in zip(members, members[1:]):
            if a == b:
                raise BlursynthError(f"--test: {blur_dir / name_a} and {blur_dir / name_b} have the same "
                                     f"frame number {a} in clip {source}")
        # A clip of frames of several sizes becomes one source per size (one frame size per shard).
        by_size: dict[tuple[int, int], list[tuple[int, str]]] = {}
        for number, name in members:
            size = _frame_size(blur_dir / name, source)
            if _frame_size(sharp_dir / name, source) != size:
                raise BlursynthError(f"--test: {blur_dir / name} and {sharp_dir / name} differ in size")
            by_size.setdefault(size, []).append((number, name))
        for size, frames in by_size.items():
            name_of = source if len(by_size) == 1 else f"{source}@{size[0]}x{size[1]}"
            clips.append(PairClip(name_of, tuple(blur_dir / f for _, f in frames),
                                  tuple(sharp_dir / f for _, f in frames), tuple(n for n, _ in frames), size))
    return clips


def _rgb(path: Path, source: str, size: tuple[int, int]) -> np.ndarray:
    bgr = decode_frame(path, source)
    if (bgr.shape[1], bgr.shape[0]) != size:
        raise BlursynthError(f"--test: {path} decodes to {bgr.shape[1]}x{bgr.shape[0]}, its header says "
                             f"{size[0]}x{size[1]}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_pairs(clips: list[PairClip], out: str | Path, root: str | Path) -> Path:
    """Write the frame pairs of ``clips`` as a blursynth dataset in the new folder ``out``.

    One sample per pair (``blur`` and ``sharp`` [1, H, W, 3]); meta ``source``,
    ``start`` = the frame number and ``T`` = 1, so that the frames of a clip
    numbered n, n+1, … form one run of consecutive exposures
    (:class:`reference_models.data.ShardIndex`). One shard per clip.
    """
    def samples() -> Iterator[Sample]:
        index = 0
        for clip in clips:
            for blur, sharp, number in zip(clip.blur, clip.sharp, clip.numbers):
                arrays = {"blur": _rgb(blur, clip.source, clip.size)[None],
                          "sharp": _rgb(sharp, clip.source, clip.size)[None]}
                yield Sample(arrays, {"index": index, "source": clip.source, "start": number, "T": 1, "tau": 1,
                                      "repeat": 0, "file": str(blur)})
                index += 1

    config = {"src": str(Path(root).absolute()), "seq_len": 1}
    try:
        write_dataset(Path(out), PAIRS_KIND, config, [len(c.numbers) for c in clips], samples())
    except BadSourceError as exc:
        raise BlursynthError(f"--test: {exc}") from None
    return Path(out)


def open_test_set(test: str | Path | None, builtin: Callable[[], Path], work: Path) -> TestSet:
    """The test set of ``--test`` (None: the built-in one ``builtin()`` makes or finds).

    Parameters
    ----------
    test : str, Path or None
        A blursynth dataset folder, a folder of pair folders, or None.
    builtin : callable
        Returns the built-in reference test set's folder.
    work : Path
        A folder of the run, where pair folders are written as a dataset (``work/test-data``).

    Raises
    ------
    BlursynthError
        A ``--test`` that is not a folder, or holds neither a dataset nor pair folders.
    """
    if test is None:
        path = builtin()
        return TestSet(path, f"built-in reference test set {path.name}", builtin=True)
    test = Path(test)
    if not test.is_dir():
        raise BlursynthError(f"--test {test}: not a folder (a blursynth dataset or folders of blurred/sharp pairs)")
    if (test / MANIFEST).exists():
        Manifest.load(test)  # a damaged manifest is one line here, before any training
        return TestSet(test, str(test))
    if (work / "test-data").exists():
        raise BlursynthError(f"--out {work}: holds test-data/ of an earlier validate; choose another --out")
    clips, what = read_pair_folders(test)
    return TestSet(write_pairs(clips, work / "test-data", test), f"{test}: {what}")
