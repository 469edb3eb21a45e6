"""``blursynth export``: every layout read back as its trainer reads it.

The reading rules are written here from the trainers' documentation, not taken
from blursynth:

* GoPro_Large (DeepDeblur, SimDeblur): ``<split>/<clip>/{blur_gamma,sharp}/*.png``,
  blur and sharp paired by identical file names; names are 6-digit frame numbers.
* BasicSR PairedImageDataset, folder mode: for each target file, the input file of
  the same name; pairs in sorted order.
* BasicSR LMDB: ``meta_info.txt`` lines ``NAME.png (H,W,C) LEVEL``; the key is the
  name up to the first ``.``; the value is the encoded image (decoded with
  ``cv2.imdecode``, i.e. to BGR); both databases list the same keys.
* REDS: ``<split>_{blur,sharp}/<3-digit seq>/<8-digit frame>.png``.
* BSD (ESTRNN): ``<split>/<seq>/{Blur,Sharp}/RGB/<8-digit frame>.png`` where the
  neighbours of frame n are n ± k, so numbers run from 0 with no gap.

Pixels are compared with the shards (RGB) after decoding with PIL (RGB) and with
OpenCV (BGR, flipped), which also checks the colour order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
from PIL import Image

from blursynth.curate.selection import Selection, write_selection
from blursynth.errors import BlursynthError
from blursynth.export import FORMATS, export
from blursynth.export import base as export_base
from blursynth.dataset import Manifest, iter_samples
from tests.helpers import assert_one_line_error, run_ok, write_frames
from tests.helpers.handmade import make_dataset

def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.mode == "RGB" and im.format == "PNG", path
        return np.asarray(im)


@pytest.fixture
def dataset(tmp_path):
    """Two sources; 'a' has two repeats, its repeat 0 continues over a shard boundary;
    the two shards hold different frame sizes."""
    return make_dataset(tmp_path / "ds", [
        [{"source": "a", "shape": (2, 12, 16), "repeat": 0, "start": 0, "T": 7},
         {"source": "a", "shape": (2, 12, 16), "repeat": 0, "start": 14, "T": 7}],
        [{"source": "a", "shape": (2, 10, 20), "repeat": 0, "start": 28, "T": 7},
         {"source": "b", "shape": (2, 10, 20), "repeat": 0, "start": 0, "T": 9},
         {"source": "a", "shape": (2, 10, 20), "repeat": 1, "start": 0, "T": 8}],
    ])


def expected_clips(dataset: Path, array: str = "blur") -> dict[tuple[str, int], list[np.ndarray]]:
    """Oracle: samples grouped by (source, repeat) in index order; a clip's frames are
    its samples' frames in order (the samples of one repeat tile the clip, docs/highspeed.md)."""
    clips: dict[tuple[str, int], list[np.ndarray]] = {}
    for sample in iter_samples(dataset):
        key = (str(sample.meta["source"]), int(sample.meta["repeat"]))
        clips.setdefault(key, []).extend(sample.arrays[array])
    return clips


def expected_pairs(dataset: Path, suffix: str = "") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Oracle of the flat pair layouts (``paired``, ``lmdb``): ``<clip>-<NNNNNN><suffix>`` ->
    (blurred, sharp) frame; a clip is named by its source, with ``_<repeat>`` when the source
    ``a`` has several repeats."""
    want, want_sharp = expected_clips(dataset), expected_clips(dataset, "sharp")
    expect = {}
    for (source, repeat), frames in want.items():
        clip = f"{source}_{repeat:03d}" if source == "a" else source
        for n, (b, s) in enumerate(zip(frames, want_sharp[(source, repeat)])):
            expect[f"{clip}-{n:06d}{suffix}"] = (b, s)
    return expect


def numbered(folder: Path, digits: int) -> list[Path]:
    """Frame files of a folder, checked to be ``digits``-digit numbers 0..n-1 with no gap."""
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"{i:0{digits}d}.png" for i in range(len(files))], folder
    return files


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "lock.mdb"}


# --------------------------------------------------------------- layouts
def test_gopro_layout_read_as_deepdeblur_reads_it(dataset, tmp_path):
    out = tmp_path / "gopro"
    export(dataset, "gopro", out, workers=1, quiet=True)
    want = expected_clips(dataset)
    want_sharp = expected_clips(dataset, "sharp")
    clips = sorted((out / "train").iterdir())
    # a: repeats 0 and 1 -> two clips, numbered in order; b: one clip named after its source
    assert [c.name for c in clips] == ["a_000", "a_001", "b"]
    for clip, key in zip(clips, [("a", 0), ("a", 1), ("b", 0)]):
        assert sorted(p.name for p in clip.iterdir()) == ["blur_gamma", "sharp"]  # gamma dataset: no linear blur
        blur, sharp = numbered(clip / "blur_gamma", 6), numbered(clip / "sharp", 6)
        assert [p.name for p in blur] == [p.name for p in sharp]
        assert len(blur) == len(want[key])
        for path, frame in zip(blur, want[key]):
            np.testing.assert_array_equal(_rgb(path), frame)
            np.testing.assert_array_equal(cv2.imread(str(path))[..., ::-1], frame)  # OpenCV reads BGR
        for path, frame in zip(sharp, want_sharp[key]):
            np.testing.assert_array_equal(_rgb(path), frame)


def test_paired_layout_read_as_basicsr_folder_mode(dataset, tmp_path):
    out = tmp_path / "paired"
    export(dataset, "paired", out, workers=1, quiet=True)
    inputs, targets = out / "train" / "input", out / "train" / "target"
    names = sorted(p.name for p in targets.iterdir())
    assert names == sorted(p.name for p in inputs.iterdir())  # identical names on both sides
    expect = expected_pairs(dataset, ".png")
    assert names == sorted(expect)
    for name in names:  # sorted pairing, as paired_paths_from_folder does
        np.testing.assert_array_equal(_rgb(inputs / name), expect[name][0])
        np.testing.assert_array_equal(_rgb(targets / name), expect[name][1])


def _read_basicsr_lmdb(folder: Path) -> tuple[list[str], dict[str, tuple[int, int]]]:
    assert sorted(p.name for p in folder.iterdir()) == ["data.mdb", "lock.mdb", "meta_info.txt"]
    keys, shapes = [], {}
    for line in (folder / "meta_info.txt").read_text().splitlines():
        m = re.fullmatch(r"(\S+)\.png \((\d+),(\d+),3\) (\d)", line)
        assert m, line
        key = line.split(".")[0]  # BasicSR's rule
        assert key == m.group(1)
        keys.append(key)
        shapes[key] = (int(m.group(2)), int(m.group(3)))
    return keys, shapes


def test_lmdb_layout_read_as_basicsr_lmdb_mode(dataset, tmp_path):
    out = tmp_path / "lmdb"
    export(dataset, "lmdb", out, workers=1, quiet=True)
    in_keys, in_shapes = _read_basicsr_lmdb(out / "train" / "input.lmdb")
    gt_keys, gt_shapes = _read_basicsr_lmdb(out / "train" / "target.lmdb")
    assert in_keys == gt_keys and in_shapes == gt_shapes
    expect = expected_pairs(dataset)
    assert sorted(in_keys) == sorted(expect)
    assert not (out / ".parts").exists()
    for side, folder in enumerate(("input.lmdb", "target.lmdb")):
        env = lmdb.open(str(out / "train" / folder), readonly=True, lock=False, readahead=False, meminit=False)
        with env.begin(write=False) as txn:
            assert txn.stat()["entries"] == len(expect)
            for key in in_keys:
                bgr = cv2.imdecode(np.frombuffer(txn.get(key.encode()), np.uint8), cv2.IMREAD_COLOR)
                assert bgr.shape[:2] == in_shapes[key]
                np.testing.assert_array_equal(bgr[..., ::-1], expect[key][side])
        env.close()


def test_reds_layout_numbers_sequences_and_frames(dataset, tmp_path):
    out = tmp_path / "reds"
    export(dataset, "reds", out, workers=1, quiet=True)
    assert sorted(p.name for p in out.iterdir()) == [".blursynth.lock", "blursynth-export.json", "train_blur",
                                                     "train_sharp"]
    want, want_sharp = expected_clips(dataset), expected_clips(dataset, "sharp")
    order = [("a", 0), ("b", 0), ("a", 1)]  # clips in order of their first sample index
    seqs = sorted((out / "train_blur").iterdir())
    assert [s.name for s in seqs] == ["000", "001", "002"]
    for seq, key in zip(seqs, order):
        blur, sharp = numbered(seq, 8), numbered(out / "train_sharp" / seq.name, 8)
        assert len(blur) == len(sharp) == len(want[key])
        for b, s, wb, ws in zip(blur, sharp, want[key], want_sharp[key]):
            np.testing.assert_array_equal(_rgb(b), wb)
            np.testing.assert_array_equal(_rgb(s), ws)


def test_bsd_layout_neighbours_exist_as_n_plus_minus_k(dataset, tmp_path):
    out = tmp_path / "bsd"
    export(dataset, "bsd", out, workers=1, quiet=True)
    want, want_sharp = expected_clips(dataset), expected_clips(dataset, "sharp")
    seqs = sorted((out / "train").iterdir())
    assert [s.name for s in seqs] == ["000", "001", "002"]
    for seq, key in zip(seqs, [("a", 0), ("b", 0), ("a", 1)]):
        blur, sharp = numbered(seq / "Blur" / "RGB", 8), numbered(seq / "Sharp" / "RGB", 8)
        n = len(blur)
        for i in range(n):  # a 3-frame window around every frame, as ESTRNN forms it
            for j in (i - 1, i + 1):
                if 0 <= j < n:
                    assert (seq / "Blur" / "RGB" / f"{j:08d}.png").exists()
        for b, s, wb, ws in zip(blur, sharp, want[key], want_sharp[key]):
            np.testing.assert_array_equal(_rgb(b), wb)
            np.testing.assert_array_equal(_rgb(s), ws)


def test_linear_dataset_goes_to_gopro_blur_folder(tmp_path):
    ds = make_dataset(tmp_path / "ds", [[{"source": "c", "shape": (1, 8, 8)}]], config={"response": "linear"})
    export(ds, "gopro", tmp_path / "g", workers=1, quiet=True)
    assert sorted(p.name for p in (tmp_path / "g" / "train" / "c").iterdir()) == ["blur", "sharp"]


# ------------------------------------------------- split, selection, safety
def test_split_file_assigns_whole_sources(tmp_path):
    ds = make_dataset(tmp_path / "ds", [[{"source": s, "shape": (1, 8, 8)} for s in "pqrs"]])
    run_ok("split", ds, "--val", "0.25", "--test", "0.25")
    split = json.loads((ds / "split.json").read_text())["sources"]
    out = tmp_path / "paired"
    export(ds, "paired", out, workers=1, quiet=True)
    for name, sources in split.items():
        files = sorted(p.name for p in (out / name / "input").iterdir()) if sources else []
        assert [f.rsplit("-", 1)[0] for f in files] == sorted(sources)


def test_selection_exports_only_selected_samples(dataset, tmp_path):
    fingerprint = Manifest.load(dataset).fingerprint
    path = write_selection(Selection(frozenset({3}), fingerprint, {}, 5), tmp_path / "sel.json")
    out = tmp_path / "paired"
    export(dataset, "paired", out, select=path, workers=1, quiet=True)
    sample = [s for s in iter_samples(dataset) if int(s.meta["index"]) == 3][0]
    files = sorted((out / "train" / "input").iterdir())
    assert [f.name for f in files] == ["b-000000.png", "b-000001.png"]
    for f, frame in zip(files, sample.arrays["blur"]):
        np.testing.assert_array_equal(_rgb(f), frame)
    other = write_selection(Selection(frozenset({3}), "0" * 64, {}, 5), tmp_path / "other.json")
    with pytest.raises(BlursynthError, match="--select .*another dataset"):
        export(dataset, "paired", tmp_path / "p2", select=other, workers=1, quiet=True)


def test_source_ids_never_escape_the_export_folder(tmp_path):
    evil = ["../../escape", "/abs/path", "x/../../y", "a/b", "a_b", "..", "clip.mp4"]
    ds = make_dataset(tmp_path / "ds", [[{"source": s, "shape": (1, 6, 6)} for s in evil]])
    box = tmp_path / "box"
    out = box / "out"
    box.mkdir()
    before = set(tmp_path.rglob("*"))
    for fmt in FORMATS:
        export(ds, fmt, out / fmt, workers=1, quiet=True)
    created = set(tmp_path.rglob("*")) - before
    assert created and all(p.resolve().is_relative_to(out.resolve()) for p in created)
    names = sorted(p.name for p in (out / "gopro" / "train").iterdir())
    assert len(names) == len(evil)  # 'a/b' and 'a_b' stay apart
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", n) for n in names)
    keys, _ = _read_basicsr_lmdb(out / "lmdb" / "train" / "input.lmdb")
    assert len(set(keys)) == len(evil)


# ------------------------------------------------- determinism and resume
@pytest.mark.parametrize("fmt", ["gopro", "lmdb"])
def test_same_bytes_for_any_worker_count(dataset, tmp_path, fmt):
    export(dataset, fmt, tmp_path / "one", workers=1, quiet=True)
    export(dataset, fmt, tmp_path / "two", workers=2, quiet=True)
    one, two = all_files(tmp_path / "one"), all_files(tmp_path / "two")
    assert one.keys() == two.keys() and one == two


class Killed(Exception):
    pass


def test_killed_folder_export_resumes_without_redoing_and_bit_for_bit(dataset, tmp_path, monkeypatch):
    from blursynth.export import plan

    monkeypatch.setattr("blursynth.export.runner.plan_tasks",
                        lambda clips: plan.plan_tasks(clips, task_frames=2))
    out = tmp_path / "g"
    real = export_base.FolderLayout.write
    calls = []

    def dying(self, task, ctx):
        if len(calls) == 2:
            first = next(iter(self.files(task.clip, task.frames[0].number, ctx).values()))
            ctx.folder(Path(first).parent)
            (ctx.out / f"{first}.tmp-999").write_bytes(b"partial")  # as a kill mid-write leaves
            raise Killed
        calls.append(task.id)
        real(self, task, ctx)

    monkeypatch.setattr(export_base.FolderLayout, "write", dying)
    with pytest.raises(Killed):
        export(dataset, "gopro", out, workers=1, quiet=True)
    assert not json.loads((out / "blursynth-export.json").read_text())["complete"]
    first = {p: p.stat().st_ino for p in out.rglob("*.png")}
    assert first
    redone = []
    monkeypatch.setattr(export_base.FolderLayout, "write",
                        lambda self, task, ctx: (redone.append(task.id), real(self, task, ctx)))
    export(dataset, "gopro", out, workers=1, quiet=True)
    assert redone and not set(redone) & set(calls)  # finished tasks are not run again
    assert not list(out.rglob("*.tmp-*"))
    assert all(p.stat().st_ino == ino for p, ino in first.items())  # nor their files rewritten
    monkeypatch.setattr(export_base.FolderLayout, "write", real)
    export(dataset, "gopro", tmp_path / "clean", workers=1, quiet=True)
    assert all_files(out) == all_files(tmp_path / "clean")


def test_killed_lmdb_build_resumes_from_parts(dataset, tmp_path, monkeypatch):
    from blursynth.export import lmdb as lmdb_layout

    out = tmp_path / "l"
    real_open = lmdb_layout.lmdb.open
    state = {"opens": 0}

    def dying_open(*args, **kw):
        state["opens"] += 1
        if state["opens"] == 2:
            raise Killed
        return real_open(*args, **kw)

    monkeypatch.setattr(lmdb_layout.lmdb, "open", dying_open)
    with pytest.raises(Killed):
        export(dataset, "lmdb", out, workers=1, quiet=True)
    assert (out / ".parts").exists()
    writes = []
    real_write = lmdb_layout.LmdbLayout.write
    monkeypatch.setattr(lmdb_layout.LmdbLayout, "write",
                        lambda self, task, ctx: (writes.append(task.id), real_write(self, task, ctx)))
    export(dataset, "lmdb", out, workers=1, quiet=True)
    assert writes == []  # every frame was encoded before the kill
    monkeypatch.setattr(lmdb_layout.lmdb, "open", real_open)
    export(dataset, "lmdb", tmp_path / "clean", workers=1, quiet=True)
    assert all_files(out) == all_files(tmp_path / "clean")


# ------------------------------------------------------------ bad input
def test_refuses_a_folder_holding_other_things_or_another_export(dataset, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(BlursynthError, match="--out .*not empty"):
        export(dataset, "gopro", busy, workers=1, quiet=True)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    export(dataset, "gopro", tmp_path / "g", workers=1, quiet=True)
    with pytest.raises(BlursynthError, match="--out .*different export"):
        export(dataset, "paired", tmp_path / "g", workers=1, quiet=True)
    with pytest.raises(BlursynthError, match="--png-level"):
        export(dataset, "gopro", tmp_path / "x", png_level=12)


def test_cli_export_one_line_errors_and_quiet(dataset, tmp_path, cli):
    result = cli("export", dataset, "--format", "reds", "--out", tmp_path / "r", "--input", "blur_linear")
    assert_one_line_error(result, "--input blur_linear")
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("*.png"))
    loud = cli("export", dataset, "--format", "reds", "--out", tmp_path / "r1", "--workers", "1")
    assert loud.exit_code == 0 and "frame/s" in loud.stderr
    quiet = cli("export", dataset, "--format", "reds", "--out", tmp_path / "r2", "--workers", "1", "--quiet")
    assert quiet.exit_code == 0 and "frame/s" not in quiet.stderr and "it/s" not in quiet.stderr


def test_highspeed_dataset_end_to_end(tmp_path):
    """A real highspeed run (two clips, two repeats, L=2) to gopro: each clip folder is
    one (clip, repeat) and its frames are the samples' frames in order."""
    rng = np.random.default_rng(0)
    for name in ("c1", "c2"):
        write_frames(tmp_path / "src" / name, [rng.integers(0, 256, (8, 12, 3), dtype=np.uint8) for _ in range(30)])
    ds = tmp_path / "ds"
    run_ok("highspeed", "--src", tmp_path / "src", "--tau", "3", "--T", "tau", "--seq-len", "2",
           "--repeats", "2", "--out", ds, "-q", "--workers", "1")
    run_ok("export", ds, "--format", "gopro", "--out", tmp_path / "g", "-q", "--workers", "2")
    want = expected_clips(ds)
    folders = sorted((tmp_path / "g" / "train").iterdir())
    assert [f.name for f in folders] == ["c1_000", "c1_001", "c2_000", "c2_001"]
    for folder, key in zip(folders, sorted(want)):
        files = numbered(folder / "blur_gamma", 6)
        assert len(files) == len(want[key])
        for f, frame in zip(files, want[key]):
            np.testing.assert_array_equal(_rgb(f), frame)
