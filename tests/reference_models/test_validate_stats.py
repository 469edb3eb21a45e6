"""``validate``'s evidence (issue 20, items 2-4): the bootstrap interval over test sources, the verdict
rule, paired comparisons, the pair-folder test sets, and the command on tiny data.

The intervals are checked against computations written here: a cluster bootstrap
done source by source in plain Python with the documented draws, and, for many
sources, the normal approximation of the mean's spread.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from blursynth.errors import BlursynthError
from blursynth.dataset import iter_samples
from tests.helpers import run_ok
from reference_models.evidence import (
    MIN_SOURCES, Interval, bootstrap_interval, sources_to_resolve, verdict_of,
)
from reference_models.trusted import read_pair_folders
from reference_models.verdicts import Score, Verdict, compare
from tests.helpers.handmade import make_tiny_dataset

TINY = ["--model-arg", "blocks=1", "--model-arg", "width=32", "--batch", 2, "--patch", 24, "--clip-len", 3,
        "--workers", 0]


def _cluster_bootstrap(values, sources, seed, n_boot, level):
    """The documented draw, source by source: n_boot rows of len(sources) source draws with replacement."""
    names = sorted(set(sources))
    members = {name: [v for v, s in zip(values, sources) if s == name] for name in names}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(n_boot, len(names)))
    means = []
    for row in draws:
        pooled = [v for k in row for v in members[names[k]]]
        means.append(sum(pooled) / len(pooled))
    means.sort()
    # numpy's default "linear" quantile: position q (n - 1) between order statistics
    def quantile(q):
        pos = q * (len(means) - 1)
        lo = math.floor(pos)
        return means[lo] + (pos - lo) * (means[min(lo + 1, len(means) - 1)] - means[lo])
    return quantile((1 - level) / 2), quantile((1 + level) / 2)


def _gains(means: dict[str, float], per: int, sd: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    values, sources = [], []
    for name, mean in means.items():
        values += list(mean + sd * rng.standard_normal(per))
        sources += [name] * per
    return values, sources


def test_interval_is_the_cluster_bootstrap_over_sources():
    # unequal source sizes: the pooled mean weighs sources by their samples
    rng = np.random.default_rng(3)
    sources = [f"s{k}" for k in range(7) for _ in range(k % 3 + 1)]
    values = list(rng.normal(0.5, 0.4, len(sources)) + [0.3 * int(s[1:]) for s in sources])
    iv = bootstrap_interval(values, sources, seed=11, n_boot=500)
    low, high = _cluster_bootstrap(values, sources, seed=11, n_boot=500, level=0.95)
    assert iv.unit == "source" and (iv.n_sources, iv.n_samples) == (7, len(values))
    assert iv.mean == pytest.approx(np.mean(values), abs=1e-12)
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))
    assert bootstrap_interval(values, sources, seed=11, n_boot=500) == iv  # seeded: deterministic


def test_interval_width_follows_the_spread_of_source_means():
    # 80 sources of 3 samples: the interval is about mean ± 1.96 SE, SE from the source means
    values, sources = _gains({f"s{k}": float(v) for k, v in enumerate(np.random.default_rng(1).normal(0.4, 0.5, 80))},
                             per=3, sd=0.2)
    iv = bootstrap_interval(values, sources, seed=0, n_boot=4000)
    source_means = np.array([np.mean([v for v, s in zip(values, sources) if s == f"s{k}"]) for k in range(80)])
    se = source_means.std(ddof=0) / math.sqrt(80)  # the bootstrap's own SE of a mean of 80 draws
    assert iv.half_width == pytest.approx(1.96 * se, rel=0.1)
    assert iv.low < iv.mean < iv.high
    # resampling samples instead ignores that a source's samples move together: too narrow here
    assert bootstrap_interval(values, sources, by_source=False).half_width < 0.7 * iv.half_width


def test_few_sources_resample_samples_and_say_so():
    values, sources = _gains({"a": 0.2, "b": 0.6}, per=6, sd=0.3)
    iv = bootstrap_interval(values, sources, seed=2, n_boot=300)
    assert MIN_SOURCES > 2 and iv.unit == "sample" and iv.n_sources == 2
    low, high = _cluster_bootstrap(values, [f"{i:03d}" for i in range(len(values))], seed=2, n_boot=300, level=0.95)
    assert (iv.low, iv.high) == (pytest.approx(low, abs=1e-12), pytest.approx(high, abs=1e-12))


@pytest.mark.parametrize("mean, sd, threshold, expected", [
    (0.8, 0.1, 0.1, "teaches"),
    (-0.5, 0.1, 0.1, "does not teach"),
    (0.0, 0.05, 0.1, "does not teach"),   # a model that learned nothing: gain 0 ± a little
    (0.15, 1.5, 0.1, "inconclusive"),     # the interval straddles the threshold
    (0.8, 0.1, 1.5, "does not teach"),    # the threshold is the user's
])
def test_verdict_rule_on_synthetic_gains(mean, sd, threshold, expected):
    values, sources = _gains({f"s{k}": mean for k in range(8)}, per=5, sd=sd, seed=4)
    iv = bootstrap_interval(values, sources)
    assert verdict_of(iv, threshold) == expected
    if expected == "teaches":
        assert iv.low > threshold
    elif expected == "does not teach":
        assert iv.high < threshold
    else:
        assert iv.low <= threshold <= iv.high


def test_verdict_bounds_are_strict_and_sources_to_resolve_scales_as_one_over_n():
    edge = Interval(0.3, 0.1, 0.5, 0.95, 10, 10, "source")
    assert verdict_of(edge, 0.1) == "inconclusive" and verdict_of(edge, 0.0999) == "teaches"
    assert verdict_of(edge, 0.5) == "inconclusive" and verdict_of(edge, 0.5001) == "does not teach"
    # half-width 0.2 at 10 sources, mean 0.1 from the threshold 0.2 -> 10 · (0.2/0.1)² = 40 sources
    assert sources_to_resolve(edge, 0.2) == 40
    assert sources_to_resolve(edge, 0.1) == 11  # already at the edge: one source more
    assert sources_to_resolve(Interval(0.1, -0.2, 0.4, 0.95, 10, 10, "source"), 0.1) is None


def _verdict(name: str, gains: list[float], sources: list[str]) -> Verdict:
    samples = tuple((i, 0, s, g) for i, (s, g) in enumerate(zip(sources, gains)))
    score = Score("T", bootstrap_interval(gains, sources), 30.0, 29.0, 0.9, 0.8, {}, samples, "")
    return Verdict(name, "dtb", "probe", 10, 10, 5, score, None, 0.1, verdict_of(score.gain, 0.1))


def test_paired_difference_is_the_interval_of_per_sample_differences():
    # sources that differ in how much they gain, for both models alike (their content)
    a_gains, sources = _gains({f"s{k}": 0.3 + 0.4 * k for k in range(6)}, per=4, sd=0.3, seed=1)
    shift = np.random.default_rng(9).normal(0.5, 0.2, len(a_gains))
    b_gains = list(np.array(a_gains) - shift)
    comparison = compare(_verdict("A", a_gains, sources), _verdict("B", b_gains, sources))
    low, high = _cluster_bootstrap(list(shift), sources, seed=0, n_boot=2000, level=0.95)
    d = comparison.difference
    assert d.mean == pytest.approx(shift.mean()) and (d.low, d.high) == (pytest.approx(low), pytest.approx(high))
    assert comparison.text().startswith(f"A teaches better than B by {shift.mean():.2f} ± {d.half_width:.2f} dB")
    # the pairing removes what both models share: the difference is far tighter than either gain
    assert d.half_width < 0.5 * _verdict("A", a_gains, sources).trusted.gain.half_width
    same = compare(_verdict("A", a_gains, sources), _verdict("C", a_gains, sources))
    assert same.difference.low == same.difference.high == 0.0 and "do not differ measurably" in same.text()
    assert compare(_verdict("B", b_gains, sources), _verdict("A", a_gains, sources)).text().startswith(
        "A teaches better than B")


def test_inconclusive_line_gives_the_interval_and_what_would_resolve_it():
    values, sources = _gains({f"s{k}": 0.2 for k in range(6)}, per=3, sd=0.8, seed=5)
    v = _verdict("D", values, sources)
    assert v.outcome == "inconclusive"
    line = v.message().splitlines()[-1]
    iv = v.trusted.gain
    assert line.startswith("verdict: inconclusive for D") and f"{iv.low:+.2f} to {iv.high:+.2f} dB" in line
    assert f"about {sources_to_resolve(iv, 0.1)} sources" in line and "--steps" in line


# ------------------------------------------------------------- test sets
def test_one_reader_for_gopro_and_paired_exports(tmp_path):
    import cv2

    data = make_tiny_dataset(tmp_path / "d", n_sources=2, per_source=2, seq_len=3, seed=3)
    samples = list(iter_samples(data))

    def rgb(path):
        return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)

    for layout in ("gopro", "paired"):
        run_ok("export", data, "--format", layout, "--out", tmp_path / layout, "--workers", 1, "-q")
        clips, what = read_pair_folders(tmp_path / layout)
        assert f"{4 * 3} frame pairs of 4 sources" in what
        matched = set()
        for clip in clips:
            assert clip.numbers == (0, 1, 2) and clip.size == (40, 40)
            # each clip holds one sample's frames, blurred and sharp, in order
            k = next(k for k, s in enumerate(samples) if np.array_equal(rgb(clip.blur[0]), s.arrays["blur"][0]))
            matched.add(k)
            for t in range(3):
                assert np.array_equal(rgb(clip.blur[t]), samples[k].arrays["blur"][t])
                assert np.array_equal(rgb(clip.sharp[t]), samples[k].arrays["sharp"][t])
        assert matched == set(range(len(samples)))
    first = sorted((tmp_path / "paired" / "train" / "input").iterdir())[0].name
    (tmp_path / "paired" / "train" / "target" / first).unlink()
    with pytest.raises(BlursynthError, match="no pair of the same name"):
        read_pair_folders(tmp_path / "paired")
    with pytest.raises(BlursynthError, match="neither a blursynth dataset"):
        read_pair_folders(tmp_path / "d")


# ---------------------------------------------------------------- command
@pytest.fixture(scope="module")
def two(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("validate")
    return (make_tiny_dataset(root / "a", n_sources=4, per_source=2, seq_len=3, seed=0),
            make_tiny_dataset(root / "b", n_sources=4, per_source=2, seq_len=3, seed=1))


def test_cli_verdict_on_a_trusted_test_set_with_intervals_and_picture(two, trusted_tiny, tmp_path):
    a, _ = two
    out = tmp_path / "v"
    result = run_ok("validate", a, "--test", trusted_tiny, "--steps", 2, "--out", out, *TINY, "-q")
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("dtb, probe preset: 2 steps on ")
    assert lines[1].startswith(f"trusted test ({trusted_tiny})") and "95% interval" in lines[1]
    assert lines[2].startswith("  gain per source: ")
    assert lines[3].startswith(f"self-consistency (held-out split of {a}")
    assert lines[-1].startswith("verdict: ")
    # the figures are those of the per-sample scores in the evaluation report, recomputed here
    report = json.loads((out / "eval-trusted.json").read_text())
    gains = [item["psnr_output"] - item["psnr_input"] for item in report["per_sample"]]
    sources = [item["source"] for item in report["per_sample"]]
    low, high = _cluster_bootstrap(gains, sources, seed=0, n_boot=2000, level=0.95)
    doc = json.loads((out / "validate.json").read_text())
    trusted = doc["verdicts"][0]["trusted"]["gain"]
    assert trusted["mean"] == pytest.approx(np.mean(gains)) and trusted["n_sources"] == len(set(sources)) >= 4
    assert (trusted["low"], trusted["high"]) == (pytest.approx(low), pytest.approx(high))
    assert (f"gain {trusted['mean']:+.2f} dB (95% interval {trusted['low']:+.2f} to {trusted['high']:+.2f})"
            in lines[1])
    assert doc["verdicts"][0]["verdict"] == verdict_of(Interval(**trusted), 0.1)
    png = (out / "validate.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_cli_trains_a_two_source_dataset_on_all_of_it_with_no_self_consistency(trusted_tiny, tmp_path):
    """Holding out one of two sources would halve the training data: both are trained on, and the
    output says why there is no self-consistency figure; the dataset's own split.json is not used."""
    data = make_tiny_dataset(tmp_path / "d", n_sources=2, per_source=3, seq_len=3, seed=4)
    run_ok("split", data, "--val", 0, "--test", 0.5)  # a split of the user's own: must not be trained on
    out = tmp_path / "v"
    result = run_ok("validate", data, "--test", trusted_tiny, "--steps", 2, "--out", out, *TINY, "-q")
    assert f"self-consistency: none ({data} has 2 sources, all trained on" in result.stdout
    split = json.loads((out / "split.json").read_text())
    assert sorted(split["sources"]["train"]) == sorted({s.meta["source"] for s in iter_samples(data)})
    assert split["sources"]["test"] == [] and not (out / "eval-test.json").exists()
    doc = json.loads((out / "validate.json").read_text())["verdicts"][0]
    assert doc["n_sources"] == 2 and doc["self_consistency"] is None and doc["n_train"] == 6
    assert json.loads((out / "train" / "config.json").read_text())["split_file"] == str(out / "split.json")


def test_cli_ranks_datasets_on_one_test_set_read_from_gopro_folders(two, trusted_tiny, tmp_path):
    a, b = two
    run_ok("export", trusted_tiny, "--format", "gopro", "--out", tmp_path / "gopro", "--workers", 1, "-q")
    out = tmp_path / "v"
    # a twice: the same data and seed train the same weights, which score the same gains
    result = run_ok("validate", a, b, a, "--test", tmp_path / "gopro", "--steps", 2, "--budget", 5, "--out", out,
                    *TINY, "-q")
    text = result.stdout
    assert text.count("verdict: ") == 3 and "frame pairs of 4 sources" in text
    ranking = text[text.index("ranking on "):].splitlines()
    assert [line.lstrip()[:3] for line in ranking[1:4]] == ["1. ", "2. ", "3. "]
    assert all(any(w in line for w in ("teaches better than", "do not differ measurably")) for line in ranking[4:])
    assert len(ranking) == 6
    doc = json.loads((out / "validate.json").read_text())
    first, second, again = doc["verdicts"]
    assert first["trusted"]["samples"] == again["trusted"]["samples"]
    # paired on the same test samples: the difference's mean is the difference of the means
    keys = [(s["index"], s["start"]) for s in first["trusted"]["samples"]]
    assert keys == [(s["index"], s["start"]) for s in second["trusted"]["samples"]]
    ranked = sorted((v["trusted"]["gain"]["mean"] for v in doc["verdicts"]), reverse=True)
    for k, comparison in enumerate(doc["comparisons"]):
        assert comparison["difference"]["mean"] == pytest.approx(ranked[k] - ranked[k + 1], abs=1e-9)
    assert (out / "1-a" / "train" / "model.pt").exists() and (out / "2-b" / "eval-trusted.json").exists()
    assert (out / "3-a" / "train" / "model.pt").exists()
    assert (out / "validate.png").exists() and (out / "test-data" / "manifest.json").exists()


@pytest.mark.parametrize("args, words", [
    (["--steps", 0], ["--steps 0"]),
    (["--holdout", 1.5], ["--holdout 1.5"]),
    (["--test", "{empty}"], ["--test", "neither a blursynth dataset"]),
    (["--test", "{a}"], ["--test", "itself"]),
    (["--select", "{sel}", "{b}"], ["--select", "one dataset"]),
    (["--test", "{stills}"], ["--test", "holds 1 frame(s)"]),  # unnumbered stills: no runs for a video model
])
def test_bad_validate_options_are_one_line_before_any_training(two, tmp_path, args, words):
    from tests.helpers import assert_one_line_error, run_cli

    a, b = two
    (tmp_path / "empty").mkdir()
    (tmp_path / "sel.json").write_text("{}")
    import cv2
    for side in ("input", "target"):
        (tmp_path / "stills" / side).mkdir(parents=True)
        for name in ("beach", "street"):
            cv2.imwrite(str(tmp_path / "stills" / side / f"{name}.png"), np.full((32, 32, 3), 90, np.uint8))
    values = {"empty": tmp_path / "empty", "a": a, "b": b, "sel": tmp_path / "sel.json", "stills": tmp_path / "stills"}
    args = [str(x).format(**values) if isinstance(x, str) else x for x in args]
    out = tmp_path / "v"
    assert_one_line_error(run_cli("validate", a, *args, "--out", out, *TINY, "-q"), *words)
    assert not out.exists()  # nothing made: not even the run folder
