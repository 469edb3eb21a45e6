"""Hostile files, hangs and bombs (issue 19, items 4, 5, 8 and 10), through the CLI.

Rows of the bad-input table for files a user names: each case must answer at
once in one line without a traceback, naming the file, and write nothing
(``check`` of test_badinput.py). Files are written here byte by byte: the
JSON with ``Infinity``, the PNG whose header declares 20000x20000 pixels, the
checkpoint of another model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import assert_one_line_error, random_frames, run_cli, run_ok, write_frames, write_video
from tests.helpers.handmade import make_dataset
from tests.helpers import assert_refused as check

SOURCES = ("a", "b", "c")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A three-source dataset (two samples each) and a real selection and split file of it."""
    root = tmp_path_factory.mktemp("files")
    ds = make_dataset(root / "ds", [[{"source": s, "shape": (2, 8, 8), "start": 14 * k}
                                     for s in SOURCES for k in range(2)]])
    from blursynth.dataset import Manifest
    return {"ds": ds, "root": root, "fingerprint": Manifest.load(ds).fingerprint}


def selection(fingerprint: str, **fields) -> dict:
    return {"format": "blursynth-selection/1", "dataset_fingerprint": fingerprint, "criteria": {},
            "n_samples": 1, "n_total": 6, "indices": [0], **fields}


def split(fingerprint: str, sources: dict) -> dict:
    return {"format": "blursynth-split/1", "dataset_fingerprint": fingerprint, "seed": 0, "val": 0.0,
            "test": 0.3, "n_samples": {}, "sources": sources}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# ------------------------------------------------------------ selections and split files
# (option, document or raw text built from the dataset's fingerprint, words of the one line)
DOCS = [
    ("--select", lambda f: json.dumps(selection(f))[:-1] + ', "n_total": Infinity}', ["Infinity", "finite"]),
    ("--select", lambda f: json.dumps(selection(f))[:-1] + ', "n_total": NaN}', ["NaN", "finite"]),
    ("--select", lambda f: json.dumps(selection(f))[:-1] + ', "n_total": 1e999}', ["1e999", "finite"]),
    ("--select", lambda f: json.dumps(selection(f))[:-1] + f', "criteria": {{"x": {nested(20_000)}}}}}',
     ["nested deeper"]),
    ("--select", lambda f: json.dumps(selection(f))[:-1] + f', "criteria": {{"x": {nested(40)}}}}}',
     ["nested deeper than 32"]),
    ("--select", lambda f: selection(f, indices=[True, 1]), ["indices[0]", "non-negative integer", "true"]),
    ("--select", lambda f: selection(f, indices=[1.9]), ["indices[0]", "integer", "1.9"]),
    ("--select", lambda f: selection(f, indices=["3"]), ["indices[0]", "integer", '"3"']),
    ("--select", lambda f: selection(f, indices=[-1]), ["indices[0]", "non-negative"]),
    ("--select", lambda f: selection(f, indices={"0": 1}), ["indices", "a list"]),
    ("--select", lambda f: {k: v for k, v in selection(f).items() if k != "indices"}, ["'indices' is missing"]),
    ("--select", lambda f: selection(f, dataset_fingerprint=7), ["dataset_fingerprint", "a string"]),
    ("--split-file", lambda f: json.dumps(split(f, {"train": ["a"]}))[:-1] + ', "val": -Infinity}',
     ["-Infinity", "finite"]),
    ("--split-file", lambda f: json.dumps(split(f, {"train": ["a"]}))[:-1] + f', "x": {nested(20_000)}}}',
     ["nested deeper"]),
    ("--split-file", lambda f: split(f, {"train": [["a"]], "test": ["b", "c"]}), ["train[0]", "a string"]),
    ("--split-file", lambda f: split(f, {"blursynth-export.json": ["a"], "train": ["b", "c"]}),
     ["blursynth-export.json", "train, val, test"]),
    ("--split-file", lambda f: split(f, {"../x": ["a"], "train": ["b", "c"]}), ["../x", "train, val, test"]),
    ("--split-file", lambda f: split(f, ["a", "b", "c"]), ["sources", "an object"]),
    ("--split-file", lambda f: split(f, {"train": ["a", "b"], "test": ["b", "c"]}),
     ["'b'", "both train and test", "overlap"]),
    ("--split-file", lambda f: split(f, {"train": ["a", "b", "c"], "val": ["c"]}),
     ["'c'", "both train and val", "overlap"]),
]


@pytest.mark.parametrize("option, make, words", DOCS, ids=[f"{c[0]}-{i}" for i, c in enumerate(DOCS)])
def test_export_refuses_a_bad_document_in_one_line(data, tmp_path, option, make, words):
    doc = make(data["fingerprint"])
    path = tmp_path / "doc.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("export", data["ds"], "--format", "gopro", "--out", out, "--workers", "1", "-q",
                     option, path)
    check(result, [str(path), *words], out, started)
    assert not out.exists()


def test_well_formed_documents_of_the_same_shape_are_accepted(data, tmp_path):
    """The valid neighbours of the rows above: the refusals are of the faults, not of the files."""
    f = data["fingerprint"]
    (tmp_path / "sel.json").write_text(json.dumps(selection(f, indices=[0, 3])))
    (tmp_path / "split.json").write_text(json.dumps(split(f, {"train": ["a", "b"], "test": ["c"]})))
    out = tmp_path / "out"
    run_ok("export", data["ds"], "--format", "gopro", "--out", out, "--workers", "1", "-q",
           "--select", tmp_path / "sel.json", "--split-file", tmp_path / "split.json")
    # sample 0 is source a (train), sample 3 source b (train): nothing goes to test
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["train"]
    assert sorted(p.name for p in (out / "train").iterdir()) == ["a", "b"]


def test_every_reader_refuses_an_overlapping_split(data, tmp_path):
    """Not only eval-reference: report, export and train-reference read the split through one reader."""
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split(data["fingerprint"], {"train": ["a", "b"], "test": ["b", "c"]})))
    result = run_cli("train-reference", "dtb", "--data", data["ds"], "--split-file", path, "--out",
                     tmp_path / "run", "--steps", "1", "-q")
    assert_one_line_error(result, str(path), "overlap")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    from blursynth.curate.split import load_split
    from blursynth.errors import BlursynthError
    with pytest.raises(BlursynthError, match="overlap"):
        load_split(path, data["ds"])


# --------------------------------------------------------------------- manifests
MANIFESTS = [
    (lambda text: text.replace('"seed": 0', '"seed": Infinity'), ["manifest.json", "Infinity", "finite"]),
    (lambda text: text.replace('"config": {', f'"config": {{"x": {nested(20_000)}, ', 1),
     ["manifest.json", "nested deeper"]),
    (lambda text: text.replace('"seed": 0', '"seed": true'), ["manifest.json", "'seed'"]),
]


@pytest.mark.parametrize("edit, words", MANIFESTS, ids=["infinity", "deep", "bool"])
@pytest.mark.parametrize("command", ["info", "verify"])
def test_a_doctored_manifest_is_one_line(data, tmp_path, edit, words, command):
    ds = tmp_path / "ds"
    ds.mkdir()
    for p in data["ds"].iterdir():
        (ds / p.name).symlink_to(p)
    (ds / "manifest.json").unlink()
    text = (data["ds"] / "manifest.json").read_text()
    assert '"seed": 0' in text
    (ds / "manifest.json").write_text(edit(text))
    started = time.monotonic()
    check(run_cli(command, ds), words, tmp_path / "none", started)


# ------------------------------------------------------- files that are not regular files
def special(kind: str, folder: Path, name: str) -> Path:
    """A FIFO, a socket or a character device (a link to /dev/zero) named ``name`` in ``folder``."""
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        cwd = os.getcwd()
        os.chdir(folder)  # AF_UNIX paths are short: bind the bare name
        try:
            socket.socket(socket.AF_UNIX).bind(name)
        finally:
            os.chdir(cwd)
    else:
        path.symlink_to("/dev/zero")
    return path


KIND_WORDS = {"fifo": "a FIFO", "socket": "a socket", "device": "a character device"}


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("option", ["--select", "--split-file"])
def test_a_document_that_is_not_a_regular_file_is_refused_before_it_is_opened(data, tmp_path, kind, option):
    path = special(kind, tmp_path, "doc.json")
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("export", data["ds"], "--format", "gopro", "--out", out, "--workers", "1", "-q", option, path)
    check(result, [str(path), KIND_WORDS[kind], "not a regular file"], out, started)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_recipe_or_crf_that_is_not_a_regular_file_is_refused(data, tmp_path, kind):
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=3))
    recipe = special(kind, tmp_path, "r.toml")
    curve = special(kind, tmp_path, "curve.txt")
    out = tmp_path / "out"
    for args, words in ((["--recipe", recipe], [str(recipe)]), (["--response", f"crf:{curve}"], [f"crf:{curve}"])):
        started = time.monotonic()
        result = run_cli("highspeed", "--src", clip, "--tau", "3", "--out", out, "-q", "--workers", "1", *args)
        check(result, [*words, KIND_WORDS[kind]], out, started)


def test_files_over_their_size_cap_are_refused_without_reading_them(data, tmp_path):
    """Sparse files: refused on their size alone (a read would take seconds and the memory)."""
    from blursynth.infiles import CAPS
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=3))
    cases = [("sel.json", "selection", ["export", data["ds"], "--format", "gopro", "--out", tmp_path / "o",
                                        "-q", "--select"]),
             ("r.toml", "recipe", ["highspeed", "--src", clip, "--out", tmp_path / "o", "-q", "--recipe"]),
             ("c.txt", "response curve", ["highspeed", "--src", clip, "--out", tmp_path / "o", "-q", "--response"])]
    for name, what, args in cases:
        path = tmp_path / name
        with open(path, "wb") as fh:
            fh.truncate(CAPS[what] + 1)
        target = f"crf:{path}" if what == "response curve" else path
        started = time.monotonic()
        check(run_cli(*args, target), [str(path), f"{CAPS[what] + 1:,} bytes", what], tmp_path / "o", started)


def test_crf_npy_whose_header_declares_more_than_the_file_holds(tmp_path):
    """A .npy header may declare any shape; numpy would allocate it before finding the file short."""
    from numpy.lib import format as npy_format
    import io
    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
    curve = tmp_path / "big.npy"
    curve.write_bytes(buf.getvalue() + b"\0" * 64)
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=3))
    started = time.monotonic()
    result = run_cli("highspeed", "--src", clip, "--tau", "3", "--out", tmp_path / "out", "-q", "--workers", "1",
                     "--response", f"crf:{curve}")
    check(result, [f"crf:{curve}", "more than the file holds"], tmp_path / "out", started)


RECIPES = [
    (f"tau = {nested(40)}\n", ["--recipe", "nested deeper than 32"]),
    (f"tau = {nested(5000)}\n", ["--recipe"]),
    ("fps = inf\n", ["--recipe", "inf", "finite"]),
    ("gamma = nan\n", ["--recipe", "nan", "finite"]),
]


@pytest.mark.parametrize("text, words", RECIPES, ids=["deep", "very-deep", "inf", "nan"])
def test_recipe_limits(tmp_path, text, words):
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=3))
    recipe = tmp_path / "r.toml"
    recipe.write_text(text)
    started = time.monotonic()
    result = run_cli("highspeed", "--recipe", recipe, "--src", clip, "--out", tmp_path / "out", "-q")
    check(result, [str(recipe), *words], tmp_path / "out", started)


# ------------------------------------------------------------------ source walker
def _sources(out: Path) -> list[str]:
    from blursynth.dataset import iter_samples
    return sorted({str(s.meta["source"]) for s in iter_samples(out)})


def test_a_symlink_loop_takes_each_clip_once(tmp_path):
    """``ln -s . loop`` took the same clip 41 times as different sources; two loops hung."""
    tree = tmp_path / "tree"
    for k, name in enumerate(("x", "y")):
        write_frames(tree / name, random_frames(6, seed=k))
    (tree / "loop").symlink_to(".")
    (tree / "x" / "up").symlink_to("../y")   # y again, through a link inside x
    (tree / "y" / "back").symlink_to("../x")  # and x from y: two links forming a loop
    elsewhere = write_frames(tmp_path / "elsewhere", random_frames(6, seed=5))
    (tree / "l1").symlink_to(elsewhere)  # two links to one folder outside the tree
    (tree / "l2").symlink_to(elsewhere)
    out = tmp_path / "out"
    started = time.monotonic()
    run_ok("highspeed", "--src", tree, "--tau", "3", "--out", out, "-q", "--workers", "1")
    assert time.monotonic() - started < 30
    # the real folders by their real paths, the outside one by its first link: each footage once
    assert _sources(out) == ["l1", "x", "y"]


@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_a_frame_that_is_not_a_regular_file_is_refused(tmp_path, kind):
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=1))
    path = special(kind, clip, "f6.png")
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("highspeed", "--src", tmp_path / "clip", "--tau", "3", "--out", out, "-q", "--workers", "1")
    check(result, ["--src", str(path), KIND_WORDS[kind]], out, started)


@pytest.mark.parametrize("given", ["folder", "file"])
def test_a_panorama_fifo_is_refused(tmp_path, given):
    folder = tmp_path / "panos"
    folder.mkdir()
    path = special("fifo", folder, "p.png")
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("panorama", "--src", folder if given == "folder" else path, "--n", "2", "--size", "8x8",
                     "--out", out, "-q", "--workers", "1")
    check(result, ["--src", str(path), "a FIFO"], out, started)


def test_deblur_refuses_a_fifo_input(tmp_path):
    frames = write_frames(tmp_path / "in", random_frames(2, seed=1))
    path = special("fifo", frames, "f2.png")
    for given in (frames, path):
        started = time.monotonic()
        result = run_cli("deblur", given, "--run", tmp_path / "no-run", "--out", tmp_path / "out", "-q")
        check(result, ["INPUT", str(path), "a FIFO"], tmp_path / "out", started)
        assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ pixel limits
def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring ``width`` x ``height`` RGB (PNG spec 11.2.2), one
    tiny IDAT and IEND: a few dozen bytes that a decoder would try to inflate into the full size."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def jpeg_header(width: int, height: int) -> bytes:
    """SOI, a baseline SOF0 segment declaring the size (ITU T.81 B.2.2), EOI."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    return b"\xff\xd8\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def tiff_header(width: int, height: int) -> bytes:
    """Little-endian TIFF: header, one IFD with ImageWidth (LONG) and ImageLength (SHORT)."""
    entries = struct.pack("<HHII", 256, 4, 1, width) + struct.pack("<HHIHH", 257, 3, 1, min(height, 65535), 0)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + b"\0\0\0\0"


BOMBS = {"png": png_header, "jpg": jpeg_header, "tif": tiff_header}


@pytest.mark.parametrize("ext", sorted(BOMBS))
def test_a_frame_declaring_400_megapixels_is_refused_before_decoding(tmp_path, ext):
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=1))
    bomb = clip / f"f6.{ext}"
    bomb.write_bytes(BOMBS[ext](20000, 20000))
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("highspeed", "--src", clip, "--tau", "3", "--out", out, "-q", "--workers", "1")
    check(result, [str(bomb), "20000x20000", "(400 megapixels)", "limit of 100;", "--max-megapixels"], out, started)


def test_the_limit_is_an_option_and_applies_to_videos(tmp_path):
    """20x12 = 240 pixels: over a limit of 0.0002 megapixels (200 pixels), under 0.0003."""
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=1))
    video = write_video(tmp_path / "v.avi", random_frames(6, seed=2))
    for src in (clip, video):
        out = tmp_path / f"out-{src.name}"
        started = time.monotonic()
        result = run_cli("highspeed", "--src", src, "--tau", "3", "--out", out, "-q", "--workers", "1",
                         "--max-megapixels", "0.0002")
        check(result, ["20x12", "0.00024 megapixels", "limit of 0.0002", "--max-megapixels"], out, started)
        run_ok("highspeed", "--src", src, "--tau", "3", "--out", out, "-q", "--workers", "1",
               "--max-megapixels", "0.0003")


@pytest.mark.parametrize("value", ["nan", "0", "-1", "inf"])
def test_bad_max_megapixels(tmp_path, value):
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=1))
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("highspeed", "--src", clip, "--tau", "3", "--out", out, "-q", "--max-megapixels", value)
    check(result, [f"--max-megapixels {value}"], out, started)


def test_a_recipe_cannot_raise_the_pixel_limit(tmp_path):
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=1))
    recipe = tmp_path / "r.toml"
    recipe.write_text("max-megapixels = 100000\n")
    result = run_cli("highspeed", "--recipe", recipe, "--src", clip, "--out", tmp_path / "out", "-q")
    assert_one_line_error(result, "'max-megapixels'", "where or how to run")


def test_a_panorama_declaring_800_megapixels_is_refused(tmp_path):
    pano = tmp_path / "p.png"
    pano.write_bytes(png_header(40000, 20000))
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("panorama", "--src", pano, "--n", "2", "--size", "8x8", "--out", out, "-q", "--workers", "1")
    check(result, [str(pano), "40000x20000", "(800 megapixels)", "limit of 400;"], out, started)


def exr_header(width: int, height: int) -> bytes:
    """The OpenEXR magic, version 2, a few attributes and a dataWindow box2i (file-layout spec)."""
    def attr(name: bytes, kind: bytes, value: bytes) -> bytes:
        return name + b"\0" + kind + b"\0" + struct.pack("<i", len(value)) + value
    window = struct.pack("<4i", 3, -2, 3 + width - 1, -2 + height - 1)
    return (b"\x76\x2f\x31\x01" + struct.pack("<I", 2) + attr(b"compression", b"compression", b"\0")
            + attr(b"dataWindow", b"box2i", window) + attr(b"displayWindow", b"box2i", window) + b"\0")


def test_exr_size_comes_from_its_header(tmp_path):
    from blursynth.sources.headers import exr_size
    path = tmp_path / "x.exr"
    path.write_bytes(exr_header(4096, 2048))
    assert exr_size(path) == (4096, 2048)
    path.write_bytes(b"\x76\x2f\x31\x01" + b"\0" * 20)
    with pytest.raises(ValueError, match="dataWindow"):
        exr_size(path)


def test_deblur_refuses_a_png_bomb_before_decoding(tmp_path):
    image = tmp_path / "bomb.png"
    image.write_bytes(png_header(20000, 20000))
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("deblur", image, "--run", tmp_path / "no-run", "--out", out, "-q")
    check(result, [str(image), "20000x20000", "--max-megapixels"], out, started)
    assert not out.exists()


# ------------------------------------------------------------------ checkpoints
TINY_DTB = {"blocks": 1, "width": 8, "feature_channels": 4}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A hand-made dtb checkpoint file (the fields train-reference writes) and a frames folder."""
    import torch
    from reference_models import create_model
    root = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    model = create_model("dtb", **TINY_DTB)
    ckpt = {"format": "blursynth-reference/1", "model": "dtb", "model_args": dict(TINY_DTB), "config": {},
            "step": 1, "state_dict": {k: v.clone() for k, v in model.state_dict().items()}}
    frames = write_frames(root / "frames", random_frames(3, h=16, w=16, seed=4))
    return {"root": root, "ckpt": ckpt, "frames": frames}


def _save(ckpt, path: Path) -> Path:
    import torch
    torch.save(ckpt, path)
    return path


def _other_shapes(ckpt):
    import torch
    from reference_models import create_model
    other = create_model("dtb", **{**TINY_DTB, "width": 12})
    return {**ckpt, "state_dict": {k: v.clone() for k, v in other.state_dict().items()}}


def _nan(ckpt):
    state = {k: v.clone() for k, v in ckpt["state_dict"].items()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[name].view(-1)[1] = float("nan")
    return {**ckpt, "state_dict": state}


CHECKPOINTS = [
    (lambda c: {**c, "model": "fsta", "model_args": {}}, ["do not fit model 'fsta'", "missing"]),
    (lambda c: {**c, "model": "zzz"}, ["model 'zzz'", "does not have"]),
    (_other_shapes, ["do not fit model 'dtb'", "another shape"]),
    (_nan, ["NaN"]),
    (lambda c: {**c, "step": True}, ["'step'"]),
    (lambda c: {**c, "state_dict": {"w": [1.0]}}, ["'state_dict'"]),
    (lambda c: {**c, "x": argparse.Namespace(a=1)}, ["refused", "Python objects"]),
    (lambda c: b"PK\x03\x04 not a zip", ["not a loadable checkpoint"]),
]


@pytest.mark.parametrize("make, words", CHECKPOINTS,
                         ids=["other-model", "unknown-model", "other-shapes", "nan", "bool-step", "no-tensors",
                              "hostile", "corrupt"])
@pytest.mark.parametrize("command", ["deblur", "eval-reference"])
def test_a_bad_checkpoint_is_one_line(checkpoint, data, tmp_path, make, words, command):
    bad = make(checkpoint["ckpt"])
    path = tmp_path / "model.pt"
    if isinstance(bad, bytes):
        path.write_bytes(bad)
    else:
        _save(bad, path)
    out = tmp_path / "out"
    if command == "deblur":
        result = run_cli("deblur", checkpoint["frames"], "--run", path, "--out", out, "-q")
    else:
        result = run_cli("eval-reference", path, "--data", data["ds"], "--split", "all", "--out", out, "-q")
    assert_one_line_error(result, str(path), *words)
    assert "weights_only" not in result.output
    assert not out.exists()


def test_a_good_hand_made_checkpoint_deblurs(checkpoint, tmp_path):
    """The rows above fail for their fault only: the same checkpoint unaltered runs."""
    path = _save(checkpoint["ckpt"], tmp_path / "model.pt")
    run_ok("deblur", checkpoint["frames"], "--run", path, "--out", tmp_path / "out", "-q")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["f0.png", "f1.png", "f2.png"]


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_checkpoint_that_is_not_a_regular_file(checkpoint, tmp_path, kind):
    path = special(kind, tmp_path, "model.pt")
    started = time.monotonic()
    result = run_cli("deblur", checkpoint["frames"], "--run", path, "--out", tmp_path / "out", "-q")
    check(result, [str(path), KIND_WORDS[kind]], tmp_path / "out", started)


# ------------------------------------------------------------------ long ids in export names
@pytest.mark.parametrize("fmt", ["gopro", "paired", "lmdb"])
def test_long_source_ids_are_shortened_with_a_hash(tmp_path, fmt):
    long_id = "d" * 200 + "/" + "e" * 250
    ds = make_dataset(tmp_path / "ds", [[{"source": long_id, "shape": (2, 8, 8)},
                                         {"source": long_id[:-1] + "f", "shape": (2, 8, 8)}]])
    out = tmp_path / "out"
    run_ok("export", ds, "--format", fmt, "--out", out, "--workers", "1", "-q")
    names = [p.name for p in out.rglob("*")]
    assert max(len(n) for n in names) < 120
    state = json.loads((out / "blursynth-export.json").read_text())
    clips = {c["source"]: c["name"] for c in state["clips"]}
    for source, name in clips.items():
        assert len(name) <= 80 and name.endswith("-" + hashlib.sha1(source.encode()).hexdigest()[:8])
        assert name.startswith("d" * 60)
    assert len(set(clips.values())) == 2


# ------------------------------------------------------------------ the cache, the disk margin
def test_an_unusable_cache_folder_is_one_line(tmp_path, monkeypatch):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("x")
    monkeypatch.setenv("BLURSYNTH_CACHE", str(not_a_folder))
    monkeypatch.chdir(tmp_path)
    result = run_cli("train-reference", "dtb", "--out", tmp_path / "run", "--steps", "1", "-q")
    assert_one_line_error(result, str(not_a_folder), "BLURSYNTH_CACHE", "--data")
    from blursynth.synthetic import cached_sample_clip
    from blursynth.errors import BlursynthError
    with pytest.raises(BlursynthError, match="BLURSYNTH_CACHE"):
        cached_sample_clip()


def test_the_disk_message_says_its_margin(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple
    from blursynth import budget
    clip = write_frames(tmp_path / "clip", random_frames(6, seed=1))
    free = 50 * 2**20
    monkeypatch.setattr(shutil, "disk_usage", lambda path: namedtuple("U", "total used free")(10**12, 0, free))
    result = run_cli("highspeed", "--src", clip, "--tau", "3", "--out", tmp_path / "out", "-q", "--workers", "1")
    assert_one_line_error(result, f"{budget.DISK_MARGIN / 2**20:.1f} MB", "margin", "only 50.0 MB is free")


# ------------------------------------------------------------------ files read by a fixed name
def test_a_fifo_planted_as_an_export_state_or_deblur_record_does_not_hang(data, tmp_path, checkpoint):
    out = tmp_path / "export"
    out.mkdir()
    state = special("fifo", out, "blursynth-export.json")
    started = time.monotonic()
    result = run_cli("export", data["ds"], "--format", "gopro", "--out", out, "--workers", "1", "-q")
    check(result, [str(state), "a FIFO"], out, started)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["blursynth-export.json"]
    deblurred = tmp_path / "deblurred"
    deblurred.mkdir()
    special("fifo", deblurred, "deblur.json")
    path = _save(checkpoint["ckpt"], tmp_path / "model.pt")
    started = time.monotonic()
    result = run_cli("deblur", checkpoint["frames"], "--run", path, "--out", deblurred, "-q")
    check(result, [f"--out {deblurred}", "not empty"], deblurred, started)


def test_a_fifo_in_the_cache_costs_only_time(tmp_path, monkeypatch):
    """The video frame-count cache (video-frames.json) is read by a fixed name: a FIFO there is
    ignored (and replaced when the count is written), never waited on."""
    cache = tmp_path / "cache"
    cache.mkdir()
    special("fifo", cache, "video-frames.json")
    monkeypatch.setenv("BLURSYNTH_CACHE", str(cache))
    video = write_video(tmp_path / "v.avi", random_frames(6, seed=2))
    started = time.monotonic()
    run_ok("highspeed", "--src", video, "--tau", "3", "--out", tmp_path / "out", "-q", "--workers", "1")
    assert time.monotonic() - started < 30
    assert json.loads((cache / "video-frames.json").read_text())[str(video.resolve())]["frames"] == 6
