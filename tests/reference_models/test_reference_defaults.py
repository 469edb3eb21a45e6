"""The training commands as a new user types them: default data, default run folder, the split
a run makes for itself, progress on the CPU, exposures across samples, automatic model choice."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blursynth.errors import BlursynthError
from tests.helpers import assert_one_line_error, run_cli
from blursynth.dataset import iter_samples
from reference_models import is_model
from reference_models.checkpoint import load_checkpoint
from reference_models.data import ShardIndex, VideoClipDataset
from reference_models.heldout import load_split, make_split
from reference_models.validate import choose_model
from tests.helpers.handmade import make_tiny_dataset

TINY = ["--model-arg", "blocks=1", "--model-arg", "width=16", "--model-arg", "feature_channels=8",
        "--workers", 0]


_cli = run_cli


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("defaults") / "data", n_sources=4, per_source=2)


def test_train_reference_dtb_in_an_empty_folder(tmp_path, monkeypatch):
    """`blursynth train-reference dtb`: built-in data made once and cached, runs/dtb then runs/dtb-2."""
    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("BLURSYNTH_CACHE", str(cache))
    small = ["--steps", 2, "--batch", 1, "--patch", 32, "--clip-len", 3, "--val-samples", 1, "--val-crop", 32,
             *TINY]
    first = _cli("train-reference", "dtb", *small)
    assert first.exit_code == 0, first.output
    assert "no --data: making the built-in sample dataset" in first.output
    assert "run folder: runs/dtb" in first.output and "-> runs/dtb" in first.output
    sample = cache / "sample-video-v1"
    index = ShardIndex(sample)
    assert len(index.sources) == 3 and min(len(r) for r in index.runs) * index.seq_len >= 13
    ckpt = load_checkpoint(tmp_path / "runs" / "dtb")
    assert ckpt["step"] == 2 and Path(ckpt["config"]["data"]) == sample
    split = load_split(tmp_path / "runs" / "dtb" / "split.json")
    assert all(len(split["sources"][k]) == 1 for k in ("train", "val", "test"))
    assert not (sample / "split.json").exists()  # the cache is never written by a run

    second = _cli("train-reference", "dtb", *small)
    assert second.exit_code == 0, second.output
    assert "training on the built-in sample dataset" in second.output and "making" not in second.output
    assert "run folder: runs/dtb-2" in second.output and (tmp_path / "runs" / "dtb-2" / "model.pt").exists()

    report = _cli("eval-reference", "runs/dtb", "--data", sample, "--json", "-q")
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["split"] == "test"


def test_run_makes_and_records_its_split_and_eval_never_scores_training_sources(data, tmp_path):
    args = ["train-reference", "dtb", "--data", data, "--steps", 1, "--batch", 1, "--patch", 16,
            "--clip-len", 3, *TINY, "-q"]
    assert not (data / "split.json").exists()
    for name in ("a", "b"):
        assert _cli(*args, "--out", tmp_path / name).exit_code == 0
    a = json.loads((tmp_path / "a" / "split.json").read_text())
    assert a["sources"] == json.loads((tmp_path / "b" / "split.json").read_text())["sources"]  # deterministic
    ckpt = load_checkpoint(tmp_path / "a")
    assert ckpt["train_sources"] == a["sources"]["train"] and ckpt["split"]["sources"] == a["sources"]
    assert ckpt["config"]["split_file"] == str(tmp_path / "a" / "split.json")

    # eval-reference works straight away, on the run's own held-out sources.
    out = _cli("eval-reference", tmp_path / "a", "--data", data, "--json", "-q")
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "a" / "eval-test.json").read_text())
    scored = {s["source"] for s in report["per_sample"]}
    assert scored == set(a["sources"]["test"]) and not scored & set(ckpt["train_sources"])

    # A split made afterwards that puts a training source in "test" is refused.
    for seed in range(20):
        other = make_split(data, val=0.0, test=0.5, seed=seed, out=tmp_path / f"s{seed}.json")
        if set(load_split(other)["sources"]["test"]) & set(ckpt["train_sources"]):
            break
    assert_one_line_error(_cli("eval-reference", tmp_path / "a", "--data", data, "--split-file", other, "-q"),
                          "trained on")


def test_progress_line_suggests_a_budget_and_final_loss_matches_the_log(data, tmp_path, monkeypatch):
    import reference_models.train_control as train_module
    monkeypatch.setattr(train_module, "LONG_RUN_S", 0.0)  # every run counts as long here
    r = _cli("train-reference", "dtb", "--data", data, "--out", tmp_path / "run", "--steps", 5, "--batch", 1,
             "--patch", 16, "--clip-len", 3, "--log-every", 2, *TINY)
    assert r.exit_code == 0, r.output
    # the one-line estimate ("… s/step on cpu; … (ETA …)"), not the tqdm bar lines a slow step also prints
    progress = [line for line in r.output.splitlines() if "s/step on" in line]
    assert progress and "ETA" in progress[0] and "--time-budget" in progress[0]
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    last = [x for x in log if "loss" in x][-1]
    assert last["step"] == 5 and {"data", "mse", "weight_l2", "lr"} <= set(last)
    final = [line for line in r.output.splitlines() if line.startswith("step 5: loss")][-1]
    assert final.split("loss ")[1].split(",")[0].split(" ")[0] == f"{last['loss']:.5g}"
    assert "KeyboardInterrupt" not in r.output


def _highspeed_seq1(root: Path) -> Path:
    from blursynth.synthetic import write_sample_clip
    for seed in range(2):
        write_sample_clip(root / "clips" / f"c{seed}", n_frames=60, size=(48, 32), seed=seed)
    r = _cli("highspeed", "--src", root / "clips", "--tau", 5, "--T", 7, "--out", root / "hs", "--workers", 1, "-q")
    assert r.exit_code == 0, r.output
    return root / "hs"


def test_video_windows_cross_samples_of_a_seq_len_1_dataset(tmp_path):
    """A --seq-len 1 highspeed dataset is a video of exposures: windows run across its samples."""
    hs = _highspeed_seq1(tmp_path)
    index = ShardIndex(hs)
    assert index.seq_len == 1 and len(index.runs) == 2  # one run per clip
    # The oracle: each clip's samples in order of their first frame, frames concatenated.
    clips: dict[str, list] = {}
    for s in iter_samples(hs):
        clips.setdefault(str(s.meta["source"]), []).append((int(s.meta["start"]), s.arrays["blur"][0]))
    video = {k: np.stack([f for _, f in sorted(v, key=lambda t: t[0])]) for k, v in clips.items()}
    assert all(len(v) == (60 - 5) // 7 + 1 for v in video.values())  # 8 exposures per clip
    ds = VideoClipDataset(index, clip_len=5, augment=True, flip=False, seed=0)
    starts = set()
    for draw in range(30):
        item = ds[(draw % len(ds), draw)]
        ref = index.refs[draw % len(ds)]
        a = ref.offset + item["start"]
        np.testing.assert_array_equal(item["blur"].permute(0, 2, 3, 1).numpy(), video[ref.source][a:a + 5])
        starts.add(a)
    assert len(starts) > 2
    ev = VideoClipDataset(index, context=1)[3]  # one sample, with a neighbour on each side
    assert (ev["first"], ev["count"], ev["blur"].shape[0]) == (1, 1, 3)

    run = tmp_path / "run"
    r = _cli("train-reference", "dtb", "--data", hs, "--out", run, "--steps", 2, "--batch", 2, "--patch", 16,
             *TINY, "-q")
    assert r.exit_code == 0, r.output
    assert json.loads((run / "config.json").read_text())["clip_len"] == 8  # 13 shrunk to the 8 exposures
    assert choose_model(hs) == "dtb"


def test_validate_picks_a_model_for_the_data(data, tmp_path):
    assert choose_model(data) == "dtb"  # sequences: a video model
    pano = tmp_path / "pano"
    r = _cli("panorama", "--n", 4, "--size", "32x32", "--out", pano, "--workers", 1, "-q")
    assert r.exit_code == 0, r.output
    if is_model("blur2video"):
        assert choose_model(pano) == "blur2video"
    else:
        with pytest.raises(BlursynthError, match="blur2video"):
            choose_model(pano)
        assert_one_line_error(_cli("validate", pano, "--budget", 0.01, "-q"), "blur2video")
