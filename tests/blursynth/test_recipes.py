"""Recipes are a library module (issue 21, item 6): ``make_highspeed(recipe=...)`` and
``make_panorama(recipe=...)`` take a recipe; keyword arguments win over it, as flags do on
the command line, and the recipe's values are those of its TOML, read here with tomllib."""

from __future__ import annotations

import json
import tomllib

import pytest

import blursynth
from blursynth.recipes import builtin_recipes
from tests.helpers import random_frames, run_cli, write_frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame 20x12 clip."""
    return write_frames(tmp_path_factory.mktemp("recipes") / "clip", random_frames(12, seed=21))


def _write(path, text: str):
    path.write_text(text)
    return path


def test_make_highspeed_takes_the_recipe_values_and_keyword_arguments_win(clip, tmp_path):
    recipe = _write(tmp_path / "mine.toml", 'tau = [3]\nT = "tau"\nseq-len = 2\nresize = "10x6"\nfps = 120\n\n'
                    '[recipe]\npaper = "none (not applied)"\n')
    toml = tomllib.loads(recipe.read_text())
    manifest = blursynth.make_highspeed(clip, recipe=recipe, seq_len=1, out=tmp_path / "d", workers=1)
    config = manifest.config
    assert config["seq_len"] == 1 != toml["seq-len"]  # the keyword argument wins
    assert config["tau"] == toml["tau"] and config["T"] == toml["T"]  # the recipe's, where none is given
    assert config["fps"] == float(toml["fps"]) and isinstance(config["fps"], float)  # as --fps 120 gives it
    assert config["resize"] == [int(v) for v in toml["resize"].split("x")]
    first = blursynth.open_dataset(tmp_path / "d")[0]
    assert first["blur"].shape == (1, 6, 10, 3)  # L = 1 exposure of 10x6 frames
    assert manifest.n_samples == 12 // 3  # tau = T = 3 tiles the 12 frames into four exposures


def test_a_recipe_by_name_gives_the_config_the_command_gives(clip, tmp_path):
    """The same recipe and the same explicit values through the API and through the CLI make
    the same dataset identity (the manifest's config)."""
    name = "nah2017_gopro"
    toml = tomllib.loads(builtin_recipes()[name].read_text())
    api = blursynth.make_highspeed(clip, recipe=name, tau=3, out=tmp_path / "api", workers=1)
    result = run_cli("highspeed", "--recipe", name, "--src", clip, "--tau", "3", "--out", tmp_path / "cli",
                     "--workers", "1", "-q")
    assert result.exit_code == 0, result.output
    cli = json.loads((tmp_path / "cli" / "manifest.json").read_text())["config"]
    assert api.config == cli
    assert api.config["tau"] == [3] != toml["tau"] and api.config["T"] == toml["T"]


def test_make_panorama_takes_a_recipe(tmp_path):
    toml = tomllib.loads(builtin_recipes()["argaw2021_panorama"].read_text())
    manifest = blursynth.make_panorama(1, recipe="argaw2021_panorama", size=(16, 8), latent=0,
                                       out=tmp_path / "p", workers=1)
    config = manifest.config
    assert config["fov"] == toml["fov"] and config["max_rotation"] == toml["max-rotation"]
    assert config["latent"] == 0 != toml["latent"]
    assert config["size"] == [8, 16]  # manifest.json records [H, W], as it always has
    assert blursynth.open_dataset(tmp_path / "p")[0]["blur"].shape[-3:-1] == (8, 16)  # (W, H) = (16, 8)


@pytest.mark.parametrize("text, words", [
    ('out = "elsewhere"\n', ["'out'", "where or how to run"]),
    ("tau = [3]\nbatch = 4\n", ["unknown option 'batch'"]),
    ("tau = 3.5\n", ["tau", "integer"]),
    ('resize = "wide"\n', ["resize", "WxH"]),
], ids=["run-key", "unknown", "float-tau", "bad-size"])
def test_make_highspeed_refuses_a_bad_recipe_naming_the_file(clip, tmp_path, text, words):
    recipe = _write(tmp_path / "bad.toml", text)
    with pytest.raises(blursynth.BlursynthError) as err:
        blursynth.make_highspeed(clip, recipe=recipe, out=tmp_path / "d", workers=1)
    message = str(err.value)
    assert str(recipe) in message and all(w in message for w in words) and "\n" not in message
    assert not (tmp_path / "d").exists()


def test_an_unknown_recipe_name_is_one_line(clip, tmp_path):
    with pytest.raises(blursynth.BlursynthError, match="no_such_recipe"):
        blursynth.make_highspeed(clip, recipe="no_such_recipe", out=tmp_path / "d")
