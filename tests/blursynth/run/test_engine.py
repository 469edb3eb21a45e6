"""Engine pieces not covered end to end: live progress and run options."""

import io

import pytest
from tqdm import tqdm

from blursynth.run.engine import RunOptions
from blursynth.errors import BlursynthError
from blursynth.run.progress import LiveProgress


def test_live_progress_adds_in_flight_samples(tmp_path):
    (tmp_path / "shard-00001.h5.tmp-11.progress").write_text("3")
    (tmp_path / "shard-00002.h5.tmp-12.progress").write_text("5")
    (tmp_path / "shard-00003.h5.tmp-13.progress").write_text("")  # being rewritten: counts 0
    (tmp_path / "notes.progress").write_text("100")  # not ours
    bar = tqdm(total=40, file=io.StringIO())
    live = LiveProgress(bar, tmp_path, done=10)
    assert live.in_flight() == 8
    live.show(live.in_flight())
    assert bar.n == 18
    live.done += 32
    live.show(live.in_flight())
    assert bar.n == 40  # never past the total
    live.finish()


@pytest.mark.parametrize("kwargs, match", [
    ({"shard_size": 0}, "--shard-size 0"),
    ({"workers": 0}, "--workers 0"),
    ({"backend": "dask"}, "--scheduler"),
])
def test_run_option_errors(tmp_path, kwargs, match):
    with pytest.raises(BlursynthError, match=match):
        RunOptions(out=tmp_path, **kwargs)
