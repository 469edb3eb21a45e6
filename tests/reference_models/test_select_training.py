"""``--select FILE`` on ``train-reference`` and ``validate``: only the selected samples, in their own split.

The expected sample lists are computed here from the shards' ``meta`` and the
split file's source lists, not from the training code.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blursynth.curate.selection import Selection, write_selection
from blursynth.errors import BlursynthError
from blursynth.dataset import Manifest, iter_samples
from tests.helpers import assert_one_line_error, run_cli
from reference_models.runtime import Distributed
from reference_models.train import TrainConfig, Trainer, train
from tests.helpers.handmade import make_split_tiny_dataset, make_tiny_dataset

TINY = dict(model="dtb", model_args={"blocks": 1, "width": 16, "feature_channels": 8}, steps=1, batch=2,
            patch=24, clip_len=3, workers=0, val_every=1, val_samples=8, ckpt_every=1, quiet=True)
CLI_TINY = ["--model-arg", "blocks=1", "--model-arg", "width=16", "--model-arg", "feature_channels=8",
            "--batch", 2, "--patch", 24,
            "--clip-len", 3, "--workers", 0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_split_tiny_dataset(tmp_path_factory.mktemp("select") / "data")  # 6 sources x 3 samples


def _sources(data: Path) -> dict[int, str]:
    return {int(s.meta["index"]): str(s.meta["source"]) for s in iter_samples(data)}


def _select(data: Path, indices, path: Path) -> Path:
    fingerprint = Manifest.load(data).fingerprint
    return write_selection(Selection(frozenset(indices), fingerprint, {"test": True}, len(_sources(data))), path)


def test_training_uses_exactly_the_selected_samples_in_their_split(data, tmp_path):
    split = json.loads((data / "split.json").read_text())["sources"]
    sources = _sources(data)
    train_src, val_src = split["train"], split["val"]
    # Two samples of each training source but the last, one validation sample, one test sample.
    chosen = [i for s in train_src[:-1] for i in sorted(k for k, v in sources.items() if v == s)[:2]]
    chosen += [min(k for k, v in sources.items() if v == val_src[0]),
               min(k for k, v in sources.items() if v == split["test"][0])]
    sel = _select(data, chosen, tmp_path / "sel.json")
    want_train = sorted(i for i in chosen if sources[i] in train_src)
    want_val = sorted(i for i in chosen if sources[i] in val_src)
    assert want_train and want_val and len(want_train) < sum(v in train_src for v in sources.values())

    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), select=str(sel), **TINY)
    with Distributed("cpu") as env:
        trainer = Trainer(config, env)
        assert sorted(r.index for r in trainer.train_refs) == want_train
        assert sorted(r.index for r in trainer.val_refs) == want_val
        assert {int(trainer.dataset.refs[k].index) for k in range(len(trainer.dataset.refs))} <= set(want_train)

    result = train(TrainConfig(data=str(data), out=str(tmp_path / "run2"), select=str(sel), **TINY))
    assert (result["n_train"], result["n_val"]) == (len(want_train), len(want_val))
    # Resuming with another (or no) selection is refused like any other changed option.
    with pytest.raises(BlursynthError, match="--select"):
        train(TrainConfig(data=str(data), out=str(tmp_path / "run2"), resume=True, **{**TINY, "steps": 2}))


def test_validate_splits_trains_and_scores_within_the_selection(data, trusted_tiny, tmp_path):
    sources = _sources(data)
    keep = sorted({*sources.values()})[:4]  # four of the six sources, two samples each
    chosen = [i for s in keep for i in sorted(k for k, v in sources.items() if v == s)[:2]]
    sel = _select(data, chosen, tmp_path / "sel.json")
    result = run_cli("validate", data, "--steps", 1, "--holdout", 0.25, "--test", trusted_tiny, "--select", sel,
                     "--out", tmp_path / "v",
                     "--model", "dtb", *CLI_TINY, "-q")
    assert result.exit_code == 0, result.output
    split = json.loads((tmp_path / "v" / "split.json").read_text())["sources"]
    assert sorted(s for part in split.values() for s in part) == keep  # the split covers the selection only
    report = json.loads((tmp_path / "v" / "eval-test.json").read_text())
    scored = {item["index"] for item in report["per_sample"]}
    assert scored == {i for i in chosen if sources[i] in split["test"]}
    n_train = sum(sources[i] in split["train"] for i in chosen)
    assert f"on {n_train} training samples" in result.stdout


def test_cli_train_reference_reports_the_selected_count(data, tmp_path):
    sources = _sources(data)
    split = json.loads((data / "split.json").read_text())["sources"]
    chosen = [i for i, s in sources.items() if s in split["train"]][:3]
    sel = _select(data, chosen, tmp_path / "sel.json")
    result = run_cli("train-reference", "dtb", "--data", data, "--out", tmp_path / "run", "--steps", 1,
                     "--select", sel, *CLI_TINY)
    assert result.exit_code == 0, result.output
    assert "(3 training samples)" in result.output


@pytest.mark.parametrize("command", ["train-reference", "validate"])
def test_a_selection_of_another_dataset_or_unknown_samples_is_one_line(data, tmp_path, command):
    other = make_tiny_dataset(tmp_path / "other", n_sources=2, per_source=1, seed=5)
    foreign = write_selection(Selection(frozenset({0}), Manifest.load(other).fingerprint, {}, 2), tmp_path / "f.json")
    unknown = _select(data, [0, 999], tmp_path / "u.json")
    args = ["dtb", "--data", data, "--steps", 1] if command == "train-reference" else [data, "--budget", 0.01]
    for sel, words in ((foreign, ("--select", "another dataset")), (unknown, ("--select", "999"))):
        out = tmp_path / f"out-{sel.stem}"
        result = run_cli(command, *args, "--select", sel, "--out", out, *CLI_TINY, "-q")
        assert_one_line_error(result, *words)
        assert not (out / "checkpoint.pt").exists()


def test_eval_reference_scores_exactly_the_selected_samples_of_the_split(data, tmp_path):
    sources = _sources(data)
    split = json.loads((data / "split.json").read_text())["sources"]
    run = tmp_path / "run"
    assert run_cli("train-reference", "dtb", "--data", data, "--out", run, "--steps", 1, *CLI_TINY,
                   "-q").exit_code == 0
    test_samples = sorted(i for i, s in sources.items() if s in split["test"])
    chosen = test_samples[:2] + [i for i, s in sources.items() if s in split["train"]][:1]  # one outside the split
    sel = _select(data, chosen, tmp_path / "sel.json")
    for args, want in (([], set(test_samples)), (["--select", sel], set(test_samples[:2]))):
        out = tmp_path / f"eval{len(args)}.json"
        result = run_cli("eval-reference", run, "--data", data, "--out", out, *args, "-q")
        assert result.exit_code == 0, result.output
        assert {item["index"] for item in json.loads(out.read_text())["per_sample"]} == want
