"""Selections and split files share one reader (blursynth/jsondoc.py), each with its own messages;
the split file needs no torch, so ``export`` and ``report`` run without importing it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from blursynth.curate.selection import load_selection
from blursynth.errors import BlursynthError
from blursynth.curate.split import load_split
from tests.helpers.handmade import make_dataset

CASES = [  # (file content or None for a missing file, words of the message)
    (None, "no such"),
    (b"{not json", "unreadable"),
    (b"\xff\xfe", "unreadable"),
    (b"[1, 2]", "format 'list'"),
    (b'{"format": "blursynth-other/1"}', "format 'blursynth-other/1'"),
]


@pytest.mark.parametrize("content, words", CASES)
def test_selection_and_split_refuse_the_same_faults_each_in_its_own_words(tmp_path, content, words):
    path = tmp_path / "doc.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(BlursynthError) as sel:
        load_selection(path)
    with pytest.raises(BlursynthError) as split:
        load_split(path)
    assert str(sel.value).startswith(f"--select {path}: ") and words in str(sel.value)
    assert str(split.value).startswith(f"{path}: ") and words in str(split.value)
    assert "selection" in str(sel.value) and "split file" in str(split.value)
    assert "\n" not in str(sel.value) + str(split.value)


def test_documents_of_another_dataset_are_refused(tmp_path):
    a = make_dataset(tmp_path / "a", [[{"source": "x", "shape": (1, 4, 4)}]])
    b = make_dataset(tmp_path / "b", [[{"source": "y", "shape": (1, 4, 4)}]], config={"response": "linear"})
    from blursynth.curate.split import make_split
    path = make_split(a, val=0.0, test=0.0, out=tmp_path / "s.json")
    assert load_split(path, a)["sources"]["train"] == ["x"]
    with pytest.raises(BlursynthError, match="made for another dataset than"):
        load_split(path, b)


def test_export_imports_no_torch(tmp_path):
    ds = make_dataset(tmp_path / "ds", [[{"source": "x", "shape": (1, 4, 4)}, {"source": "y", "shape": (1, 4, 4)}]])
    code = ("import sys; from blursynth.curate.split import make_split; from blursynth.export import export; "
            "import blursynth.cli.export, blursynth.report.figures; "
            f"make_split({str(ds)!r}, val=0.0, test=0.5); "
            f"export({str(ds)!r}, 'gopro', {str(tmp_path / 'out')!r}, workers=1, quiet=True); "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('reference_models')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout
    assert (tmp_path / "out" / "test").is_dir()  # the split file was read
