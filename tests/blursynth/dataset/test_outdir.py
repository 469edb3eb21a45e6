"""Every command that writes owns its output through blursynth.dataset.outdir (issue 19, items 1 and 2).

Through the CLI: locks that are links or folders, a second run on a locked run
folder, temporaries that are not the command's own, output files that belong to
a dataset or to someone else, missing and unwritable folders, and pickles
planted in every folder a command reads (never executed).
"""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import re
import shutil
from pathlib import Path

import pytest

from blursynth.export import base as export_base
from tests.helpers import assert_one_line_error, random_frames, run_cli, run_ok, write_frames
from tests.helpers.handmade import make_dataset

REPO = Path(__file__).resolve().parents[3]
LOCK = ".blursynth.lock"  # the name docs/format.md gives the lock of every output folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two sources of two samples each, one clip per source (tiny frames)."""
    return make_dataset(tmp_path_factory.mktemp("outdir") / "data", [
        [{"source": "a", "shape": (2, 12, 16), "start": 0},
         {"source": "a", "shape": (2, 12, 16), "start": 14}],
        [{"source": "b", "shape": (2, 12, 16), "start": 0},
         {"source": "b", "shape": (2, 12, 16), "start": 14}],
    ])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (links as their target, not followed)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(folder))] = b"-> " + os.readlink(p).encode()
        elif p.is_file():
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


# ------------------------------------------------------------------ the lock
@pytest.mark.parametrize("name", [LOCK, ".blursynth-export.lock"])
def test_export_lock_link_never_touches_its_target(data, tmp_path, name):
    """The old export lock was opened with open(..., "w"): a link there emptied its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "x"
    out.mkdir()
    (out / name).symlink_to(victim)
    result = run_cli("export", data, "--format", "gopro", "--out", out, "--workers", "1", "-q")
    assert_one_line_error(result, "--out", str(out))
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in out.iterdir()) == [name]  # nothing written beside the link


def test_export_lock_dangling_link_creates_nothing_outside(data, tmp_path):
    out = tmp_path / "x"
    out.mkdir()
    outside = tmp_path / "elsewhere" / "created-by-export"
    outside.parent.mkdir()
    (out / LOCK).symlink_to(outside)
    result = run_cli("export", data, "--format", "paired", "--out", out, "--workers", "1", "-q")
    assert_one_line_error(result, LOCK, "symbolic link")
    assert not outside.exists() and not os.listdir(outside.parent)


def test_export_lock_that_is_a_folder_is_one_line(data, tmp_path):
    out = tmp_path / "x"
    (out / LOCK).mkdir(parents=True)
    result = run_cli("export", data, "--format", "paired", "--out", out, "--workers", "1", "-q")
    assert_one_line_error(result, LOCK, "not a regular file")


def test_second_train_on_a_locked_run_folder_is_one_line(tmp_path, tiny_data):
    """A run folder is locked for the whole run: held here with flock as another run would."""
    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run / LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = run_cli("train-reference", "dtb", "--data", tiny_data, "--out", run, *TINY_DTB)
    finally:
        os.close(fd)
    assert_one_line_error(result, "--out", "another blursynth run")
    assert os.listdir(run) == [LOCK]


# --------------------------------------------------------------- temporaries
def test_resumed_export_removes_only_its_own_temporaries(data, tmp_path):
    out = tmp_path / "g"
    run_ok("export", data, "--format", "gopro", "--out", out, "--workers", "1", "-q")
    state = json.loads((out / "blursynth-export.json").read_text())
    state["complete"] = False  # as a killed export leaves it: the re-run resumes
    (out / "blursynth-export.json").write_text(json.dumps(state, indent=1))
    sharp = out / "train" / "a" / "sharp"
    assert (sharp / "000000.png").is_file()
    own = [sharp / "000000.png.tmp-999", out / "blursynth-export.json.tmp-12"]
    mine = [sharp / "notes.tmp-1", sharp / "mine.png.tmp-7", out / "train" / "000000.png.tmp-5",
            out / "draft.tmp-3", sharp / "000000.png.tmp-x"]
    (out / "deep" / "er").mkdir(parents=True)
    mine.append(out / "deep" / "er" / "000000.png.tmp-4")
    for p in own + mine:
        p.write_bytes(b"left here")
    run_ok("export", data, "--format", "gopro", "--out", out, "--workers", "1", "-q")
    assert not any(p.exists() for p in own)
    assert all(p.read_bytes() == b"left here" for p in mine)


# --------------------------------------------------------- files not our own
def test_report_json_is_named_after_the_page_and_never_replaces_a_file_it_did_not_write(data, tmp_path):
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "notes.json").write_text("my notes")
    result = run_cli("report", data, "--out", rep / "notes.html", "--workers", "1", "-q")
    assert_one_line_error(result, str(rep / "notes.json"), "--overwrite")
    assert sorted(os.listdir(rep)) == ["notes.json"] and (rep / "notes.json").read_text() == "my notes"
    (rep / "notes.html").write_text("<p>my page</p>")
    (rep / "notes.json").unlink()
    assert_one_line_error(run_cli("report", data, "--out", rep / "notes.html", "--workers", "1", "-q"),
                          str(rep / "notes.html"), "--overwrite")
    assert (rep / "notes.html").read_text() == "<p>my page</p>"
    run_ok("report", data, "--out", rep / "notes.html", "--workers", "1", "-q", "--grid", "1", "--overwrite")
    doc = json.loads((rep / "notes.json").read_text())
    assert list(doc)[0] == "format" and doc["format"] == "blursynth-report/1"
    assert doc["dataset"]["samples_reported"] == 4
    # The markers by which a re-run knows its own files (and replaces them without --overwrite):
    assert b"<meta name='generator' content='blursynth-report/1'>" in (rep / "notes.html").read_bytes()[:4096]
    assert (rep / "notes.json").read_bytes().startswith(b'{\n "format": "blursynth-report/1"')


@pytest.mark.parametrize("command, name", [
    ("report", "manifest.html"), ("filter", "manifest.json"), ("filter", "shard-00001.h5"),
    ("split", "manifest.json"), ("split", "shard-00000.h5"), ("preview", "shard-00000.h5"),
    ("preview", LOCK),
])
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_file_of_the_dataset_is_never_an_output(data, tmp_path, command, name, overwrite):
    data = Path(shutil.copytree(data, tmp_path / "data"))  # a regression must not spoil the shared one
    before = snapshot(data)
    args = [command, data, "--out", data / name] + (["--overwrite"] if overwrite else [])
    if command in ("report", "filter"):
        args += ["--workers", "1", "-q"]
    result = run_cli(*args)
    expect = "manifest.json" if command == "report" else name  # report's JSON is manifest.json
    assert_one_line_error(result, expect, "file of the dataset")
    assert snapshot(data) == before


@pytest.mark.parametrize("command", ["filter", "split", "preview"])
def test_a_file_the_command_did_not_write_needs_overwrite(data, tmp_path, command):
    target = tmp_path / "mine.json"
    target.write_text("mine")
    args = [command, data, "--out", target] + {"filter": ["--workers", "1", "-q"], "preview": [],
                                               "split": ["--val", "0", "--test", "0.5"]}[command]
    assert_one_line_error(run_cli(*args), str(target), "--overwrite")
    assert target.read_text() == "mine"
    run_ok(*args, "--overwrite")
    again = run_cli(*args)  # a file it wrote itself: replaced without --overwrite
    assert again.exit_code == 0, again.output
    head = target.read_bytes()[:4096]
    marker = {"filter": b'"format": "blursynth-selection/1"', "split": b'"format": "blursynth-split/1"',
              "preview": b"Software\x00blursynth-preview/1"}[command]
    assert marker in head


def test_a_link_is_never_taken_for_a_file_the_command_wrote(data, tmp_path):
    """A link to a selection is not a selection filter wrote: refused, its target untouched."""
    real = tmp_path / "real.json"
    run_ok("filter", data, "--out", real, "--workers", "1", "-q")
    before = real.read_bytes()
    (tmp_path / "link.json").symlink_to(real)
    assert_one_line_error(run_cli("filter", data, "--out", tmp_path / "link.json", "--sources", "a",
                                  "--workers", "1", "-q"), "--overwrite")
    run_ok("filter", data, "--out", tmp_path / "link.json", "--sources", "a", "--workers", "1", "-q",
           "--overwrite")
    assert real.read_bytes() == before  # the link was replaced, not written through
    assert not (tmp_path / "link.json").is_symlink()


@pytest.fixture
def unwritable(tmp_path):
    """A folder in which creating a file fails (a mode-555 folder; as root, where chmod does
    not stop writes, a pseudo file system such as /sys or /proc), else skip."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        for candidate in (folder, Path("/sys"), Path("/proc")):
            try:
                (candidate / "probe.tmp-0").open("wb").close()
            except OSError:
                yield candidate
                return
            (candidate / "probe.tmp-0").unlink()
        pytest.skip("no folder here refuses a new file")
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("command", ["preview", "report"])
def test_preview_and_report_in_a_missing_or_unwritable_folder_are_one_line(data, tmp_path, unwritable, command):
    name = "sheet.png" if command == "preview" else "page.html"
    extra = ["--workers", "1", "-q"] if command == "report" else []
    missing = tmp_path / "no" / "such" / name
    assert_one_line_error(run_cli(command, data, "--out", missing, *extra), str(missing), "does not exist")
    assert not (tmp_path / "no").exists()
    result = run_cli(command, data, "--out", unwritable / name, *extra)
    assert_one_line_error(result, str(unwritable / name), "cannot write")
    assert not any(name in p for p in os.listdir(unwritable))


# --------------------------------------------------------------- run folders
TINY_DTB = ["--model-arg", "blocks=1", "--model-arg", "width=16", "--model-arg", "feature_channels=8",
            "--steps", "1", "--batch", "1", "--patch", "24", "--clip-len", "3", "--workers", "0",
            "--val-every", "1000", "--val-samples", "1", "-q"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from tests.helpers.handmade import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data", n_sources=2, per_source=2)


@pytest.fixture(scope="module")
def tiny_run(tiny_data, tmp_path_factory) -> Path:
    """One training step of a tiny dtb."""
    run = tmp_path_factory.mktemp("tinyrun") / "run"
    run_ok("train-reference", "dtb", "--data", tiny_data, "--out", run, *TINY_DTB)
    return run


def test_train_holds_the_run_folder_lock_for_the_whole_run(tmp_path, tiny_data, monkeypatch):
    """While run 1 trains, its lock is held (flock from here fails) and run 2 on the same
    folder stops in one line; run 1 then finishes and its folder is not mixed with run 2."""
    from reference_models import train as train_module

    seen = {}
    real_fit = train_module.Trainer.fit

    def fit(self):
        fd = os.open(self.out / LOCK, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        with pytest.raises(Exception) as second:
            train_module.train(train_module.TrainConfig(data=str(tiny_data), out=str(self.out), steps=1,
                                                        workers=0, quiet=True))
        seen["second"] = str(second.value)
        return real_fit(self)

    monkeypatch.setattr(train_module.Trainer, "fit", fit)
    run = tmp_path / "run"
    run_ok("train-reference", "dtb", "--data", tiny_data, "--out", run, *TINY_DTB)
    assert re.fullmatch(r"--out .*: another blursynth run is writing there", seen["second"])
    lines = (run / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1]  # one run's log, not two mixed
    fd = os.open(run / LOCK, os.O_RDWR)  # released at the end
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_an_error_leaves_no_empty_run_folder(tmp_path, tiny_data):
    bad = tmp_path / "bad-selection.json"
    bad.write_text("not json")
    out = tmp_path / "new" / "run"
    result = run_cli("train-reference", "dtb", "--data", tiny_data, "--out", out, "--select", bad, *TINY_DTB)
    assert_one_line_error(result, "--select")
    assert not (tmp_path / "new").exists()


def test_a_new_run_refuses_a_folder_of_someone_else(tmp_path, tiny_data):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run_cli("train-reference", "dtb", "--data", tiny_data, "--out", out, *TINY_DTB)
    assert_one_line_error(result, "--out", "notes.txt")
    assert sorted(os.listdir(out)) == [LOCK, "notes.txt"] and (out / "notes.txt").read_text() == "mine"


def test_eval_report_never_replaces_a_checkpoint_or_a_dataset_file(tiny_data, tiny_run):
    before = (tiny_run / "checkpoint.pt").read_bytes()
    result = run_cli("eval-reference", tiny_run, "--data", tiny_data, "--out", tiny_run / "checkpoint.pt",
                     "--device", "cpu", "-q")
    assert_one_line_error(result, "checkpoint.pt", "--overwrite")
    assert (tiny_run / "checkpoint.pt").read_bytes() == before
    manifest = (tiny_data / "manifest.json").read_bytes()
    result = run_cli("eval-reference", tiny_run, "--data", tiny_data, "--out", tiny_data / "manifest.json",
                     "--device", "cpu", "-q", "--overwrite")
    assert_one_line_error(result, "manifest.json", "file of the dataset")
    assert (tiny_data / "manifest.json").read_bytes() == manifest


# ----------------------------------------------------- no code from the data
class _Payload:
    """Unpickling this creates ``path``: the proof that a pickle was executed."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def plant_pickles(folder: Path, sentinel: Path, names) -> None:
    payload = pickle.dumps(_Payload(sentinel))
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(payload)


def test_the_planted_payload_runs_when_unpickled(tmp_path):
    """The control: the pickles planted below do execute code when anything unpickles them."""
    sentinel = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(sentinel)))
    assert sentinel.is_dir()


def test_no_pickle_in_a_dataset_is_executed_by_any_reader(data, tmp_path):
    sentinel = tmp_path / "ran"
    ds = tmp_path / "ds"
    shutil.copytree(data, ds)
    plant_pickles(ds, sentinel, ["index.pkl", "manifest.pkl", "meta.pickle", "shard-00000.pkl", ".parts/x.pkl"])
    for args in (["verify", ds], ["info", ds], ["preview", ds, "--out", tmp_path / "p.png"],
                 ["report", ds, "--out", tmp_path / "r.html", "--workers", "1", "-q"],
                 ["filter", ds, "--out", tmp_path / "sel.json", "--workers", "1", "-q"],
                 ["split", ds, "--out", tmp_path / "split.json", "--val", "0", "--test", "0.5"],
                 ["export", ds, "--format", "lmdb", "--out", tmp_path / "l", "--workers", "1", "-q"]):
        run_ok(*args)
        assert not sentinel.exists(), args


@pytest.fixture
def killed_lmdb(data, tmp_path, monkeypatch) -> Path:
    """An lmdb export killed after every part file was written, before the databases."""
    from blursynth.export import lmdb as lmdb_layout

    class Killed(Exception):
        pass

    def die(self, tasks, ctx):
        raise Killed

    out = tmp_path / "l"
    monkeypatch.setattr(lmdb_layout.LmdbLayout, "finish", die)
    with pytest.raises(Killed):
        run_cli("export", data, "--format", "lmdb", "--out", out, "--workers", "1", "-q")
    monkeypatch.undo()
    assert len(list((out / ".parts").glob("task-*.part"))) >= 2
    return out


def test_lmdb_resume_never_unpickles_a_planted_part(data, tmp_path, killed_lmdb):
    sentinel = tmp_path / "ran"
    # Under the name older versions gave parts (they unpickled them on resume).
    plant_pickles(killed_lmdb, sentinel, [".parts/task-0000000.pkl", ".parts/task-0000001.pkl"])
    run_ok("export", data, "--format", "lmdb", "--out", killed_lmdb, "--workers", "1", "-q")
    assert not sentinel.exists()
    clean = tmp_path / "clean"
    run_ok("export", data, "--format", "lmdb", "--out", clean, "--workers", "1", "-q")
    got, want = snapshot(killed_lmdb), snapshot(clean)
    for files in (got, want):
        for name in [n for n in files if n.endswith("lock.mdb")]:
            del files[name]  # lmdb's reader table
    assert got == want  # and the planted files went with the parts


def test_a_pickle_in_place_of_a_part_is_one_line(data, tmp_path, killed_lmdb):
    sentinel = tmp_path / "ran"
    part = sorted((killed_lmdb / ".parts").glob("task-*.part"))[0]
    plant_pickles(killed_lmdb, sentinel, [part.relative_to(killed_lmdb)])
    result = run_cli("export", data, "--format", "lmdb", "--out", killed_lmdb, "--workers", "1", "-q")
    assert_one_line_error(result, part.name, "not a part file")
    assert not sentinel.exists()


def test_an_lmdb_folder_that_is_a_link_is_one_line(data, tmp_path, killed_lmdb):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("mine")
    (killed_lmdb / "train").mkdir(exist_ok=True)
    (killed_lmdb / "train" / "input.lmdb").symlink_to(elsewhere, target_is_directory=True)
    result = run_cli("export", data, "--format", "lmdb", "--out", killed_lmdb, "--workers", "1", "-q")
    assert_one_line_error(result, "input.lmdb", "symbolic link")
    assert sorted(os.listdir(elsewhere)) == ["keep"]


def test_an_export_folder_that_is_a_link_below_out_is_never_written_through(data, tmp_path, monkeypatch):
    """A folder of the layout replaced by a link (after a kill) stops the resume in one line."""
    from blursynth.export import plan

    monkeypatch.setattr("blursynth.export.runner.plan_tasks", lambda clips: plan.plan_tasks(clips, task_frames=1))
    real = export_base.FolderLayout.write
    calls = []

    class Killed(Exception):
        pass

    def dying(self, task, ctx):
        if calls:
            raise Killed
        calls.append(task.id)
        real(self, task, ctx)

    monkeypatch.setattr(export_base.FolderLayout, "write", dying)
    out = tmp_path / "p"
    with pytest.raises(Killed):
        run_cli("export", data, "--format", "paired", "--out", out, "--workers", "1", "-q")
    monkeypatch.setattr(export_base.FolderLayout, "write", real)
    elsewhere = tmp_path / "elsewhere"
    (out / "train" / "target").rename(elsewhere)
    (out / "train" / "target").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(elsewhere)
    result = run_cli("export", data, "--format", "paired", "--out", out, "--workers", "1", "-q")
    assert_one_line_error(result, "train/target", "symbolic link")
    assert snapshot(elsewhere) == before


def test_no_pickle_in_a_run_folder_is_executed(tmp_path, tiny_data, tiny_run):
    """Checkpoints are read with torch's weights-only loader: a pickle in their place is refused."""
    sentinel = tmp_path / "ran"
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    plant_pickles(run, sentinel, ["checkpoint.pt", "model.pt", "state.pkl", "optimizer.pkl"])
    frames = tmp_path / "frames"
    frames.mkdir()
    write_frames(frames, random_frames(3, 20, 24, seed=3))
    for args in (["eval-reference", run, "--data", tiny_data, "--device", "cpu", "-q"],
                 ["deblur", frames, "--run", run, "--out", tmp_path / "d", "--device", "cpu", "-q"],
                 ["train-reference", "dtb", "--data", tiny_data, "--out", run, "--resume", *TINY_DTB]):
        result = run_cli(*args)
        assert result.exit_code != 0, (args, result.output)
        assert "Traceback" not in result.output
        assert not sentinel.exists(), args


def _call_args(text: str, start: int) -> str:
    """The argument text of the call whose ``(`` is at ``start - 1`` (up to its matching ``)``)."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return text[start:]


def test_no_code_in_the_package_unpickles():
    """Nothing in blursynth or reference_models calls an unpickler on a file: torch.load
    only with weights_only=True, numpy never with allow_pickle."""
    forbidden = re.compile(r"\bpickle\.loads?\(|\bUnpickler\(|\bjoblib\.load\(|allow_pickle\s*=\s*True|"
                           r"\bdill\.|\bcloudpickle\.loads?\(|\bshelve\.open\(")
    offenders = []
    for package in ("blursynth", "reference_models"):
        for path in sorted((REPO / package).rglob("*.py")):
            text = path.read_text()
            offenders += [f"{path.name}: {m.group(0)}" for m in forbidden.finditer(text)]
            offenders += [f"{path.name}: torch.load({_call_args(text, m.end())})"
                          for m in re.finditer(r"\btorch\.load\(", text)
                          if not re.search(r"weights_only\s*=\s*True", _call_args(text, m.end()))]
    assert offenders == []
