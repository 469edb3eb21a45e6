"""``blursynth report`` and ``blursynth filter``: the measures against numpy oracles written
here, the report's figures against counts made here, the page rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from blursynth.curate.selection import load_selection, select_samples
from blursynth.errors import BlursynthError
from blursynth.export import export
from blursynth.curate.measures import measure_dataset, motion_score
from blursynth.report import make_report
from blursynth.dataset import iter_samples
from tests.helpers import assert_one_line_error, run_ok
from tests.helpers.handmade import make_dataset


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB texture (blurred noise): optical flow can track it."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (h, w, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0) * 3 - 256, 0, 255).astype(np.uint8)


def moving_sample(source: str, d: float, tau: int = 7, k: int = 4, h: int = 64, w: int = 96, seed: int = 0):
    """A sample whose latent frames show a texture moving d px per source frame to the right.

    Latent m sits (tau-1)/(k-1)·m source frames into the exposure (docs/highspeed.md)."""
    base = texture(h, w + 64, seed)
    step = (tau - 1) / (k - 1)
    latent = np.stack([np.ascontiguousarray(base[:, 32 - int(round(d * step * m)):][:, :w]) for m in range(k)])
    blur = np.mean(latent.astype(np.float64), axis=0).round().astype(np.uint8)
    return {"source": source, "tau": tau, "arrays": {"blur": blur[None], "sharp": latent[k // 2][None],
                                                     "latent": latent[None]}}


def oracle_psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / mse)


# ------------------------------------------------------------------ measures
def test_motion_score_recovers_a_known_translation(tmp_path):
    for d in (0.5, 1.5):
        s = moving_sample("m", d)
        score = motion_score(s["arrays"], {"tau": 7})
        assert score == pytest.approx(d, rel=0.2), (d, score)


def test_blur_strength_and_clipping_match_numpy(tmp_path):
    rng = np.random.default_rng(3)
    blur = rng.integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    blur[0, :5] = 255
    sharp = rng.integers(0, 256, (2, 20, 30, 3), dtype=np.uint8)
    ds = make_dataset(tmp_path / "ds", [[{"source": "s", "arrays": {"blur": blur, "sharp": sharp}}]])
    m = measure_dataset(ds, workers=1)[0]
    assert m["psnr"] == pytest.approx(oracle_psnr(blur, sharp), abs=1e-9)
    assert m["mad"] == pytest.approx(np.mean(np.abs(blur.astype(int) - sharp.astype(int))), abs=1e-9)
    high = sum(255 in px for px in blur.reshape(-1, 3)) / (2 * 20 * 30)
    low = sum(0 in px for px in blur.reshape(-1, 3)) / (2 * 20 * 30)
    assert m["clipped_high"] == pytest.approx(high) and m["clipped_low"] == pytest.approx(low)


# -------------------------------------------------------------------- report
@pytest.fixture
def latent_dataset(tmp_path):
    return make_dataset(tmp_path / "ds", [
        [moving_sample("a", 0.5, seed=1), moving_sample("a", 1.0, seed=2)],
        [moving_sample("b", 2.0, seed=3), moving_sample("c", 1.5, seed=4), moving_sample("a", 1.5, seed=5)],
    ], config={"response": "gamma:2.2", "latent": 4})


def test_report_figures_match_counts_made_here(latent_dataset, tmp_path):
    out = tmp_path / "report.html"
    run_ok("report", latent_dataset, "--out", out, "--grid", "2", "-q", "--workers", "2")
    figures = json.loads((tmp_path / "report.json").read_text())
    samples = list(iter_samples(latent_dataset))
    assert figures["counts"]["per_source"] == dict(Counter(str(s.meta["source"]) for s in samples))
    assert figures["distributions"]["tau"]["counts"] == {"7": 5}
    by_index = {s["index"]: s for s in figures["samples"]}
    for s in samples:
        i = int(s.meta["index"])
        assert by_index[i]["psnr"] == pytest.approx(oracle_psnr(s.arrays["blur"], s.arrays["sharp"]))
    assert figures["motion"]["available"] and figures["motion"]["from"] == "latent frames"
    truth = {0: 0.5, 1: 1.0, 2: 2.0, 3: 1.5, 4: 1.5}
    for i, d in truth.items():
        assert by_index[i]["motion"] == pytest.approx(d, rel=0.2)
    psnrs = {i: by_index[i]["psnr"] for i in by_index}
    assert figures["grids"]["strongest"] == sorted(psnrs, key=psnrs.get)[:2]
    assert figures["grids"]["weakest"] == sorted(psnrs, key=psnrs.get, reverse=True)[:2]
    page = out.read_text()
    srcs = re.findall(r"<img[^>]*\ssrc='([^']*)'", page)
    assert len(srcs) == len(re.findall(r"<img", page)) > 0
    assert all(src.startswith("data:image/png;base64,") for src in srcs)
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", page)  # nothing from the network
    assert f"{figures['dataset']['samples_reported']}</td>" in page


def test_report_without_consecutive_frames_says_so(tmp_path):
    ds = make_dataset(tmp_path / "ds", [[{"source": "s", "shape": (1, 24, 32)}]])
    figures = make_report(ds, tmp_path / "r.html", workers=1)
    assert not figures["motion"]["available"] and "no consecutive frames" in figures["motion"]["note"]
    assert all(s["motion"] is None for s in figures["samples"])
    assert "no consecutive frames" in (tmp_path / "r.html").read_text()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None and os.environ.get("CI") != "true",
                    reason="chromium not installed (CI installs it and runs this test)")
def test_report_renders_in_headless_chromium(latent_dataset, tmp_path):
    out = tmp_path / "report.html"
    make_report(latent_dataset, out, grid=2, workers=1)
    browser = _chromium()
    assert browser, "CI=true but chromium is missing: .ci/run installs it"
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp_path / 'profile'}"]
    # every image decoded: a probe copy of the page writes the count into its title
    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text() + "<script>window.addEventListener('load',function(){var im=document.images,"
                     "bad=0;for(var i=0;i<im.length;i++){if(!im[i].complete||im[i].naturalWidth===0)bad++;}"
                     "document.title='IMAGES '+im.length+' BAD '+bad;});</script>")
    dom = subprocess.run(flags + ["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    n_img = len(re.findall(r"<img", out.read_text()))
    assert f"<title>IMAGES {n_img} BAD 0</title>" in dom, dom[:300]
    shot = tmp_path / "shot.png"
    subprocess.run(flags + ["--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1600, 1200)
    # not blank: many colours (text, plots in blue, photo thumbnails) and a real spread of values
    assert image.std() > 20
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200


# -------------------------------------------------------------------- filter
def test_filter_selects_as_computed_here_and_export_report_use_it(latent_dataset, tmp_path):
    samples = list(iter_samples(latent_dataset))
    psnr = {int(s.meta["index"]): oracle_psnr(s.arrays["blur"], s.arrays["sharp"]) for s in samples}
    cut = float(np.median(list(psnr.values())))
    sel = tmp_path / "sel.json"
    run_ok("filter", latent_dataset, "--min-blur-psnr", cut, "--max-motion", 1.75, "--sources", "a,b",
           "--out", sel, "-q", "--workers", "1")
    truth = {0: 0.5, 1: 1.0, 2: 2.0, 3: 1.5, 4: 1.5}
    source = {int(s.meta["index"]): str(s.meta["source"]) for s in samples}
    want = {i for i in psnr if psnr[i] >= cut and truth[i] <= 1.75 and source[i] in ("a", "b")}
    selection = load_selection(sel, latent_dataset)
    assert set(selection.indices) == want and want
    doc = json.loads(sel.read_text())
    assert doc["criteria"]["sources"] == ["a", "b"] and doc["n_total"] == 5
    figures = make_report(latent_dataset, tmp_path / "r.html", select=sel, workers=1)
    assert {s["index"] for s in figures["samples"]} == want
    state = export(latent_dataset, "paired", tmp_path / "p", select=sel, workers=1, quiet=True)
    assert sorted(i for c in state["clips"] for i in c["samples"]) == sorted(want)
    assert not any(p.suffix == ".h5" for p in tmp_path.iterdir())  # a selection copies no data


def test_filter_bad_input_is_one_line(latent_dataset, tmp_path, cli):
    assert_one_line_error(cli("filter", latent_dataset, "--sources", "zz", "--out", tmp_path / "s.json"),
                          "--sources", "zz")
    flat = make_dataset(tmp_path / "flat", [[{"source": "s", "shape": (1, 24, 32)}]])
    assert_one_line_error(cli("filter", flat, "--max-motion", "1", "--out", tmp_path / "s.json"),
                          "--max-motion", "no consecutive frames")
    assert not (tmp_path / "s.json").exists()
    with pytest.raises(BlursynthError, match="--min-blur-psnr"):
        select_samples(latent_dataset, min_blur_psnr=float("nan"))
    other = make_dataset(tmp_path / "other", [[{"source": "s", "shape": (1, 8, 8)}]],
                         config={"response": "linear"})
    run_ok("filter", other, "--out", tmp_path / "o.json", "-q")
    assert_one_line_error(cli("report", latent_dataset, "--select", tmp_path / "o.json", "--out", tmp_path / "x.html"),
                          "--select", "another dataset")
