"""The Python API: the README's example runs as written; open_dataset, torch_dataset and blur
against computations written here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import blursynth
from blursynth.api import blur
from tests.helpers import random_frames, write_frames
from tests.helpers.oracles import assert_blur_close, eq1_oracle as oracle

REPO = Path(__file__).resolve().parents[2]


def test_readme_use_from_python_runs(tmp_path, monkeypatch, capsys):
    text = (REPO / "README.md").read_text()
    section = text.split("## Use from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md (Use from Python)", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("samples") and int(out[0].split()[0]) > 0
    assert "[127 127 127]" in out
    assert out[-1].startswith("[0.7297") and abs(float(out[-1].strip("[]").split()[0]) - 0.5 ** (1 / 2.2)) < 1e-6
    assert (tmp_path / "data" / "manifest.json").exists() and (tmp_path / "pano" / "manifest.json").exists()


def test_import_blursynth_stays_light():
    code = ("import sys, blursynth; heavy = [m for m in ('cv2', 'h5py', 'torch', 'matplotlib') if m in sys.modules];"
            "print(heavy); blursynth.open_dataset; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "False"


def test_open_dataset_and_torch_dataset_read_what_highspeed_wrote(tmp_path):
    frames = random_frames(15, seed=9)
    clip = write_frames(tmp_path / "clip", frames)
    manifest = blursynth.make_highspeed(src=clip, tau=3, T=3, latent=2, out=tmp_path / "d", workers=1, shard_size=2)
    data = blursynth.open_dataset(tmp_path / "d")
    assert len(data) == manifest.n_samples == 5 and data.sources == ["clip"]
    for i, sample in enumerate(data):
        blur_, sharp, latent = oracle(frames, 3 * i, 3, 3, 1, K=2)
        assert int(sample["index"]) == i and sample["source"] == "clip" and int(sample["start"]) == 3 * i
        assert_blur_close(sample["blur"], blur_)
        np.testing.assert_array_equal(sample["sharp"], sharp)
        np.testing.assert_array_equal(sample["latent"], latent)
    torch = pytest.importorskip("torch")
    items = blursynth.torch_dataset(tmp_path / "d")
    item = items[4]
    assert item["blur"].shape == (1, 3, 12, 20) and item["latent"].shape == (1, 2, 3, 12, 20)
    expected = torch.from_numpy(np.moveaxis(data[4]["sharp"], -1, -3).astype(np.float32) / 255.0)
    assert torch.equal(item["sharp"], expected)
    with pytest.raises(blursynth.BlursynthError, match="not a blursynth dataset"):
        blursynth.open_dataset(tmp_path / "clip")
    with pytest.raises(TypeError, match="unknown argument 'taus'"):
        blursynth.make_highspeed(src=clip, taus=3)


@pytest.mark.parametrize("response, g", [("gamma", 2.2), ("linear", 1.0), ("srgb", None)])
def test_blur_is_eq1_for_uint8_and_float(response, g):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    x = frames / 255.0
    if g is None:  # IEC 61966-2-1
        lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).mean(0)
        expected = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    else:
        expected = (x ** g).mean(0) ** (1 / g)
    np.testing.assert_allclose(blur(x, response=response), expected, atol=1e-12)
    assert_blur_close(blur(frames, response=response), 255.0 * expected)
    assert blur(list(frames), response=response).dtype == np.uint8
    with pytest.raises(blursynth.BlursynthError, match="differ in shape"):
        blur([frames[0], frames[0, :3]])
