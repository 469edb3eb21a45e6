"""The fuzz cases of issue 7 for the synthesis and data commands, kept as a table:
arguments -> the words the one-line error must contain. Every case must answer at
once (no planning of absurd sizes), in one line, without a traceback, and write
nothing. Training options have their own table (test_reference_badinput.py)."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from blursynth.budget import MAX_PLANNED_SAMPLES
from tests.helpers import assert_refused as check
from tests.helpers import assert_one_line_error, no_partial_output, random_frames, run_cli, write_frames

# {clip}, {pano}, {out}, {data}, {strings}, {complex}, {tiny} are filled in by the fixture.
HIGHSPEED = [
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--seed", "1.5"], ["--seed"]),
    (["--tau", "8"], ["--tau 8"]),
    (["--tau", "0"], ["--tau 0"]),
    (["--tau", "1e9"], ["--tau"]),
    (["--tau", "7", "--T", "5"], ["--T 5"]),
    (["--latent", "1e9"], ["--latent"]),
    (["--latent", "1000000000"], ["--latent 1000000000"]),
    (["--seq-len", "1e9"], ["--seq-len"]),
    (["--seq-len", "1000000000"], ["--seq-len 1000000000", "memory"]),
    (["--seq-len", "0"], ["--seq-len 0"]),
    (["--repeats", "1e9"], ["--repeats"]),
    (["--repeats", "1000000000"], ["--repeats 1000000000", f"{MAX_PLANNED_SAMPLES:,}"]),
    (["--repeats", "0"], ["--repeats 0"]),
    (["--fps", "0"], ["--fps"]),
    (["--fps", "inf"], ["--fps"]),
    (["--fps", "nan"], ["--fps"]),
    (["--gamma", "nan"], ["--gamma"]),
    (["--gamma", "-2"], ["--gamma"]),
    (["--gamma", "inf"], ["--gamma"]),
    (["--response", "bogus"], ["--response", "bogus"]),
    (["--response", "crf:{strings}"], ["crf:", "strings.npy", "real numbers"]),
    (["--response", "crf:{complex}"], ["crf:", "complex.npy", "real numbers"]),
    (["--resize", "0x5"], ["--resize"]),
    (["--resize", "100000x100000"], ["--resize 100000x100000", "memory"]),
    (["--shard-size", "0"], ["--shard-size 0"]),
    (["--workers", "0"], ["--workers 0"]),
    (["--workers", "-3"], ["--workers -3"]),
    (["--compression", "zip"], ["--compression"]),
    (["--backend", "dask"], ["--scheduler"]),
    # Issue 19: a malformed or closed scheduler address, at once and in one line.
    (["--backend", "dask", "--scheduler", "zzz://??"], ["--scheduler zzz://??", "not a Dask scheduler address"]),
    (["--backend", "dask", "--scheduler", "tcp://127.0.0.1:1"], ["--scheduler tcp://127.0.0.1:1", "cannot connect"]),
]

PANORAMA = [
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--n", "0"], ["--n 0"]),
    (["--n", "1e12"], ["--n"]),
    (["--n", "100000000"], ["--n 100000000", f"{MAX_PLANNED_SAMPLES:,}"]),
    (["--n", "1000000000000"], ["--n 1000000000000", f"{MAX_PLANNED_SAMPLES:,}"]),
    (["--fov", "179", "--size", "8x8"], ["--fov 179", "focal length"]),
    (["--fov", "179", "--size", "24x24"], ["--fov 179", "focal length"]),
    (["--fov", "nan"], ["--fov"]),
    (["--frames-per-degree", "1e308"], ["--frames-per-degree", "frames"]),
    (["--frames-per-degree", "nan"], ["--frames-per-degree"]),
    (["--frames-per-degree", "0"], ["--frames-per-degree"]),
    (["--max-step", "1e-300"], ["--max-step", "frames"]),
    (["--max-step", "0"], ["--max-step"]),
    (["--max-step", "nan"], ["--max-step"]),
    (["--max-rotation", "nan"], ["--max-rotation"]),
    (["--max-pitch", "91"], ["--max-pitch"]),
    (["--duty", "nan"], ["--duty"]),
    (["--latent", "1000000000"], ["--latent 1000000000", "memory"]),
    (["--latent", "-1"], ["--latent -1"]),
    (["--seq-len", "1e9"], ["--seq-len"]),
    (["--seq-len", "1000000000"], ["--seq-len 1000000000", "memory"]),
    (["--size", "100000x100000"], ["--size 100000x100000", "memory"]),
    (["--size", "0x4"], ["--size"]),
    (["--response", "crf:{strings}"], ["real numbers"]),
    (["--response", "crf:{complex}"], ["real numbers"]),
    (["--src", "{tiny}", "--src", "{pano}"], ["tiny.png", "too small"]),
]

DATA = [
    (["sample", "{out}", "--frames", "0"], ["--frames 0"]),
    (["sample", "{out}", "--frames", "1000000000"], ["--frames 1000000000", "memory"]),
    (["sample", "{out}", "--size", "100000x100000"], ["--size 100000x100000", "memory"]),
    (["sample", "{out}", "--size", "8x8"], ["--size 8x8"]),
    (["sample", "{out}", "--seed", "-1"], ["--seed"]),
    (["sample", "{out}", "--clips", "0"], ["--clips 0"]),
    # Issue 19: a missing --src beside --out is a typo, never the built-in sample clip.
    (["highspeed", "--src", "{out}-typo", "--out", "{out}"], ["-typo: no such file or folder", "without --out"]),
    (["preview", "{data}", "--out", "{out}.png", "--n", "0"], ["--n 0"]),
    (["preview", "{out}", "--out", "{out}.png"], ["does not exist"]),
    (["info", "{clip}"], ["not a blursynth dataset"]),
    (["verify", "{clip}"], ["not a blursynth dataset"]),
    # Issue 19: output files (blursynth.dataset.outdir); a dataset's own file is never one, even with --overwrite.
    (["preview", "{data}", "--out", "{out}/sheet.png"], ["--out", "does not exist"]),
    (["report", "{data}", "--out", "{out}/page.html", "--workers", "1"], ["--out", "does not exist"]),
    (["report", "{data}", "--out", "{data}/manifest.html", "--overwrite", "--workers", "1"],
     ["manifest.json", "file of the dataset"]),
    (["filter", "{data}", "--out", "{data}/manifest.json", "--overwrite", "--workers", "1"],
     ["manifest.json", "file of the dataset"]),
    (["split", "{data}", "--out", "{data}/shard-00000.h5", "--overwrite"], ["shard-00000.h5", "file of the dataset"]),
    (["preview", "{data}", "--out", "{data}/.blursynth.lock", "--overwrite"], [".blursynth.lock", "file of the"]),
    (["export", "{data}", "--format", "paired", "--out", "{data}", "--workers", "1"],
     ["--out", "holds no blursynth export"]),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("badinput")
    clip = write_frames(root / "clip", random_frames(12, seed=2))
    pano = root / "pano.png"
    rng = np.random.default_rng(0)
    assert cv2.imwrite(str(pano), rng.integers(0, 256, (32, 64, 3), dtype=np.uint8))
    tiny = root / "tiny.png"
    assert cv2.imwrite(str(tiny), rng.integers(0, 256, (1, 2, 3), dtype=np.uint8))
    np.save(root / "strings.npy", np.array([str(i) for i in range(256)]))
    np.save(root / "complex.npy", np.linspace(0, 1, 256) + 0.5j)
    data = root / "data"
    run_cli("highspeed", "--src", clip, "--tau", "3", "--out", data, "-q", "--workers", "1")
    return {"clip": clip, "pano": pano, "tiny": tiny, "strings": root / "strings.npy",
            "complex": root / "complex.npy", "data": data, "root": root}


def fill(args, files, out):
    return [str(a).format(out=out, **{k: v for k, v in files.items() if k != "root"}) for a in args]


def case_id(case):
    return " ".join(case[0])


@pytest.mark.parametrize("args, words", HIGHSPEED, ids=[case_id(c) for c in HIGHSPEED])
def test_highspeed_bad_input(files, tmp_path, args, words):
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli("highspeed", "--src", files["clip"], "--tau", "3", "--out", out, "-q", "--workers", "1",
                     *fill(args, files, out))  # the case's flags last: they win
    check(result, [w.format(**files) for w in words], out, started)


@pytest.mark.parametrize("args, words", PANORAMA, ids=[case_id(c) for c in PANORAMA])
def test_panorama_bad_input(files, tmp_path, args, words):
    out = tmp_path / "out"
    src = [] if "--src" in args else ["--src", files["pano"]]
    size = [] if "--size" in args else ["--size", "16x16"]
    started = time.monotonic()
    result = run_cli("panorama", *src, "--n", "2", *size, "--out", out, "-q", "--workers", "1",
                     *fill(args, files, out))
    check(result, words, out, started)


@pytest.mark.parametrize("args, words", DATA, ids=[case_id(c) for c in DATA])
def test_data_command_bad_input(files, tmp_path, args, words):
    out = tmp_path / "out"
    started = time.monotonic()
    result = run_cli(*fill(args, files, out))
    check(result, words, out, started)
    assert not (tmp_path / "out.png").exists()


def test_a_4x2_panorama_renders(files, tmp_path):
    """The smallest 2:1 panorama is valid input: it must render, not crash."""
    pano = tmp_path / "p4x2.png"
    assert cv2.imwrite(str(pano), np.random.default_rng(1).integers(0, 256, (2, 4, 3), dtype=np.uint8))
    out = tmp_path / "out"
    result = run_cli("panorama", "--src", pano, "--n", "2", "--size", "16x16", "--out", out, "-q",
                     "--workers", "1")
    assert result.exit_code == 0, result.output
    from blursynth.dataset import iter_samples, verify
    samples = list(iter_samples(out))
    assert verify(out) == [] and len(samples) == 2
    for sample in samples:
        # a 4-pixel panorama has no detail: every rendered pixel is a mix of its 8 colours
        image = cv2.cvtColor(cv2.imread(str(pano)), cv2.COLOR_BGR2RGB)
        assert sample.arrays["sharp"].min() >= 0 and sample.arrays["sharp"].shape == (1, 16, 16, 3)
        assert image.shape == (2, 4, 3)


RECIPES = [
    ('out = "/tmp/elsewhere"\n', ["'out'", "where or how to run"]),
    ("overwrite = true\n", ["'overwrite'", "where or how to run"]),
    ("workers = 2\n", ["'workers'", "where or how to run"]),
    ('backend = "dask"\n', ["'backend'", "where or how to run"]),
    ('scheduler = "tcp://host:8786"\n', ["'scheduler'", "where or how to run"]),
    ("skip-bad = true\n", ["'skip-bad'", "where or how to run"]),
    ("skip_bad = true\n", ["'skip_bad'", "where or how to run"]),
    ("quiet = true\n", ["'quiet'", "where or how to run"]),
    ("tau = true\n", ["tau = true", "integer"]),
    ("tau = 7.5\n", ["tau = 7.5", "integer"]),
    ("tau = [7, 9.5]\n", ["tau = [7, 9.5]", "integer"]),
    ('tau = "7,9.5"\n', ["tau", "integer"]),
    ("seq-len = 2\nseq_len = 3\n", ["'seq-len' and 'seq_len' are the same option"]),
    ("seq-len = 2.0\n", ["seq-len = 2.0", "integer"]),
    ('fps = "fast"\n', ["fps", "a number"]),
    ("gamma = true\n", ["gamma = true", "a number"]),
    ("response = 2\n", ["response = 2", "a string"]),
    ("resize = 960\n", ["resize = 960", "WxH"]),
    ("T = 7.5\n", ["T = 7.5"]),
    ("T = true\n", ["T = true"]),
    ("colour = 3\n", ["unknown option 'colour'"]),
    (b"tau = [7]\n# caf\xe9 au lait\n", ["not UTF-8"]),
]


@pytest.mark.parametrize("text, words", RECIPES, ids=[repr(c[0])[:40] for c in RECIPES])
def test_recipe_bad_input(files, tmp_path, text, words):
    recipe = tmp_path / "recipe.toml"
    recipe.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out"
    result = run_cli("highspeed", "--recipe", recipe, "--src", files["clip"], "--out", out, "-q", "--workers", "1")
    assert_one_line_error(result, "recipe.toml", *words)
    assert no_partial_output(out)


def test_a_recipe_cannot_choose_what_gets_deleted(files, tmp_path):
    """A downloaded recipe naming another folder and --overwrite must not touch it."""
    victim = tmp_path / "victim"
    assert run_cli("highspeed", "--src", files["clip"], "--tau", "3", "--out", victim, "-q",
                   "--workers", "1").exit_code == 0
    before = {p.name: p.read_bytes() for p in victim.iterdir()}
    recipe = tmp_path / "evil.toml"
    recipe.write_text(f'tau = [5]\nout = "{victim}"\noverwrite = true\n')
    result = run_cli("highspeed", "--recipe", recipe, "--src", files["clip"], "-q", "--workers", "1",
                     "--out", tmp_path / "mine")
    assert_one_line_error(result, "evil.toml", "'out'")
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before


def test_valid_recipe_values_still_load(files, tmp_path):
    recipe = tmp_path / "ok.toml"
    recipe.write_text('tau = "3,5"\nT = [5, 7]\nseq-len = 1\nfps = 240\ngamma = 2\nresize = "20x12"\n'
                      '[recipe]\npaper = "a test"\n')
    out = tmp_path / "out"
    result = run_cli("highspeed", "--recipe", recipe, "--src", files["clip"], "--out", out, "-q", "--workers", "1")
    assert result.exit_code == 0, result.output
    from blursynth.dataset import Manifest
    config = Manifest.load(out).config
    assert config["tau"] == [3, 5] and config["T"] == [5, 7] and config["fps"] == 240
