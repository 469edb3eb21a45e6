"""Recipes by name, preview's seeded draw across sources, and the thread share of small runs."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

import blursynth.run.engine as engine
from blursynth.cli.common import RECIPES
from blursynth.run.engine import RunOptions
from blursynth.curate.preview import row_label
from blursynth.curate.split import draw_across_sources
from tests.helpers import random_frames, run_ok, write_frames

REPO = Path(__file__).resolve().parents[3]


def test_recipe_by_name_from_any_folder(tmp_path, monkeypatch, cli):
    clip = write_frames(tmp_path / "clip", random_frames(40, seed=2))
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here
    result = cli("highspeed", "--recipe", "argaw2021_gopro7", "--src", clip, "--out", "o", "-q")
    assert result.exit_code == 0, result.output
    config = __import__("json").loads((tmp_path / "o" / "manifest.json").read_text())["config"]
    recipe = tomllib.loads((RECIPES / "argaw2021_gopro7.toml").read_text())
    assert config["tau"] == recipe["tau"] and config["latent"] == recipe["latent"] and config["T"] == recipe["T"]
    # the old spelling with the folder works too, and an unknown name says what exists
    assert cli("highspeed", "--recipe", "recipes/argaw2021_gopro7.toml", "--src", clip, "--out", "o2",
               "-q").exit_code == 0
    bad = cli("highspeed", "--recipe", "kim2016", "--src", clip)
    assert bad.exit_code == 2 and "kim2017_dtb" in bad.output and "blursynth recipes" in bad.output
    # the checkout's recipes/ is the installed folder
    assert (REPO / "recipes").resolve() == RECIPES


def test_recipes_lists_every_installed_recipe_with_its_paper(cli):
    result = cli("recipes")
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    files = sorted(RECIPES.glob("*.toml"))
    assert len(lines) == len(files)
    expected_command = {"kim2017_dtb": "highspeed", "argaw2021_panorama": "panorama",
                        "kim2017_dtb_train": "train-reference"}
    for line, path in zip(lines, files):
        name, command = line.split()[:2]
        assert name == path.stem
        assert tomllib.loads(path.read_text())["recipe"]["paper"] in line
        if name in expected_command:
            assert command == expected_command[name]


def test_preview_draws_across_sources_with_a_seed():
    sources = ["a"] * 10 + ["b"] * 3 + ["c"] * 1
    rows = draw_across_sources(sources, 3, seed=5)
    assert sorted(sources[i] for i in rows) == ["a", "b", "c"]  # one per source first
    assert draw_across_sources(sources, 3, seed=5) == rows and len(set(rows)) == 3
    draws = {tuple(draw_across_sources(sources, 3, seed=s)) for s in range(10)}
    assert len(draws) > 1  # the seed changes the draw
    many = draw_across_sources(sources, 20, seed=1)
    assert sorted(many) == list(range(14))  # never more rows than samples, none twice
    # round-robin over the sources with samples left: a b c | a b | a b | a a a ...
    got = [sources[i] for i in many]
    assert set(got[:3]) == {"a", "b", "c"} and set(got[3:5]) == {"a", "b"} and set(got[5:7]) == {"a", "b"}
    assert got[7:] == ["a"] * 7


def test_preview_labels_the_frame_of_a_sequence(tmp_path):
    write_frames(tmp_path / "src" / "c0", random_frames(30, seed=1))
    write_frames(tmp_path / "src" / "c1", random_frames(30, seed=2))
    data = tmp_path / "d"
    run_ok("highspeed", "--src", tmp_path / "src", "--tau", 3, "--T", "tau", "--seq-len", 4, "--out", data,
           "-q", "--workers", 1)
    sheet = tmp_path / "sheet.png"
    run_ok("preview", data, "--out", sheet, "--n", 2, "--seed", 3)
    import cv2
    assert cv2.imread(str(sheet)) is not None
    sample = {"index": np.int64(5), "source": "c1", "tau": np.int64(3), "T": np.int64(3),
              "blur": np.zeros((4, 12, 20, 3), np.uint8)}
    assert row_label(sample, 2, 4) == "c1\n#5, frame 3 of 4\ntau=3 T=3, 20x12"


@pytest.mark.parametrize("workers, tasks, threads", [(2, 1, 2), (2, 2, 1), (2, 5, 1), (1, 1, 2), (4, 1, 2)])
def test_fewer_tasks_than_workers_give_the_busy_ones_the_cores(monkeypatch, workers, tasks, threads):
    monkeypatch.setattr(engine.os, "cpu_count", lambda: 2)
    _, n_jobs, got = engine._parallel(RunOptions(out=Path("x"), workers=workers), tasks)
    assert (n_jobs, got) == (workers, threads)
    _, _, forced = engine._parallel(RunOptions(out=Path("x"), workers=workers, threads_per_worker=1), tasks)
    assert forced == 1
