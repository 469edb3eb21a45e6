"""The one source walker both pipelines use: ids, hidden files, duplicates, skip list."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blursynth.errors import BadSourceError, BlursynthError
from blursynth.sources import clips, panoramas
from blursynth.sources.discovery import discover, duplicate_ids, walk
from tests.helpers import random_frames, write_frames


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_walk_is_sorted_relative_and_skips_hidden(tmp_path):
    for rel in ["b/2.x", "b/1.x", "a/z.x", ".hidden/h.x", "a/.h.x", "top.x", "a/deep/d.x"]:
        touch(tmp_path / rel)
    got = [(rel, files) for _, rel, files in walk(tmp_path)]
    assert got == [(".", ["top.x"]), ("a", ["z.x"]), ("a/deep", ["d.x"]), ("b", ["1.x", "2.x"])]


def test_duplicate_ids_by_hand():
    assert duplicate_ids(["c", "a", "b", "a", "c", "c"]) == ["a", "c"]
    assert duplicate_ids([]) == [] and duplicate_ids(["x"]) == []


def files_as_sources(root):
    """A minimal pipeline: every *.x file is a source; a file named bad*.x is unusable."""
    def probe(path, sid):
        if path.name.startswith("bad"):
            raise BadSourceError(sid, f"{path}: bad by name")
        return sid
    return [(f"{rel}/{name}" if rel != "." else name, lambda p=folder / name, r=rel, n=name:
             probe(p, f"{r}/{n}" if r != "." else n))
            for folder, rel, files in walk(root) for name in files if name.endswith(".x")]


def test_probe_order_skip_list_and_errors(tmp_path):
    for rel in ["r/b.x", "r/a.x", "r/sub/bad1.x", "r/c.txt"]:
        touch(tmp_path / rel)
    kw = dict(nothing_found="no .x files found", noun="thing")
    found, skipped = discover([tmp_path / "r"], files_as_sources, skip_bad=True, **kw)
    assert found == ["a.x", "b.x"]
    assert skipped == [{"source": "sub/bad1.x", "reason": f"{tmp_path / 'r/sub/bad1.x'}: bad by name"}]
    with pytest.raises(BadSourceError, match="bad by name"):
        discover([tmp_path / "r"], files_as_sources, **kw)
    with pytest.raises(BlursynthError, match="no such file or folder"):
        discover([tmp_path / "missing"], files_as_sources, **kw)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BlursynthError, match="no .x files found"):
        discover([tmp_path / "empty"], files_as_sources, **kw)
    with pytest.raises(BlursynthError, match="no source given"):
        discover([], files_as_sources, **kw)
    touch(tmp_path / "s" / "a.x")
    with pytest.raises(BlursynthError, match="two things have the same id 'a.x'"):
        discover([tmp_path / "r", tmp_path / "s"], files_as_sources, **kw)


def test_both_pipelines_share_ids_and_the_duplicate_check(tmp_path):
    pano = np.zeros((8, 16, 3), np.uint8)
    for root in ("one", "two"):
        write_frames(tmp_path / root / "clips" / "take", random_frames(3, seed=1))
        write_frames(tmp_path / root / "clips" / ".cache", random_frames(3, seed=2))  # hidden: not a clip
        (tmp_path / root / "panos" / "p").mkdir(parents=True)
        assert cv2.imwrite(str(tmp_path / root / "panos" / "p" / "pano.png"), pano)
        assert cv2.imwrite(str(tmp_path / root / "panos" / ".hidden.png"), pano)
    found, _ = clips.discover([tmp_path / "one" / "clips"])
    assert [c.id for c in found] == ["take"]
    found, _ = panoramas.discover([tmp_path / "one" / "panos"])
    assert [p.id for p in found] == ["p/pano.png"]
    with pytest.raises(BlursynthError, match="two clips have the same id 'take'"):
        clips.discover([tmp_path / "one" / "clips", tmp_path / "two" / "clips"])
    with pytest.raises(BlursynthError, match="two panoramas have the same id 'p/pano.png'"):
        panoramas.discover([tmp_path / "one" / "panos", tmp_path / "two" / "panos"])
