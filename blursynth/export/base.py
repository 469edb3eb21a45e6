"""What every export layout shares: the context of a run, file writes.

A layout is an object with ``write(task, ctx)``, ``done(task, ctx)``,
``finish(tasks, ctx)`` and ``outputs(tasks, ctx)``: every file it writes, so
that a resumed export removes the temporaries of those files and of nothing
else (:mod:`blursynth.dataset.outdir`). Folder layouts (:class:`FolderLayout`) only
say where each frame goes; the LMDB layout collects encoded frames and builds its
databases at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blursynth.atomic import atomic_write_bytes
from blursynth.errors import BlursynthError
from blursynth.export.plan import FrameSequence, Task
from blursynth.dataset.outdir import subfolder
from blursynth.png import encode_png
from blursynth.dataset import ShardFiles


@dataclass(frozen=True)
class ExportContext:
    """Where and how a run exports (the same in every worker).

    Attributes
    ----------
    dataset : the dataset folder.
    out : the export folder ``DIR``; nothing is written outside it.
    renditions : blurred frame arrays of the dataset, ``{array name: response name}``
        in the dataset's order (the first is ``blur``).
    input : the rendition used as the network input by single-input layouts.
    png_level : zlib level of every PNG (``cv2.IMWRITE_PNG_COMPRESSION``).
    """

    dataset: Path
    out: Path
    renditions: dict[str, str]
    input: str
    png_level: int

    def path(self, relative: str) -> Path:
        """``out / relative``, refusing anything that would land outside ``out``."""
        path = self.out / relative
        if ".." in Path(relative).parts or Path(relative).is_absolute():
            raise BlursynthError(f"--out {self.out}: refusing to write {relative!r} outside it")
        return path

    def folder(self, relative: str | Path) -> Path:
        """``out / relative`` as a real folder inside ``out`` (:func:`blursynth.dataset.outdir.subfolder`):
        made where missing; a symbolic link or a file on the way is one line."""
        return subfolder(self.out, relative)


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name and rename it into place
    (:func:`blursynth.atomic.atomic_write_bytes`).

    A file that exists under its final name is therefore complete, which is
    what resume relies on. No fsync per file: a kill leaves no partial file,
    a power cut may (``blursynth-export.json`` is fsync'd when the export ends).
    """
    atomic_write_bytes(path, data, sync=False)


class FolderLayout:
    """A layout of one PNG file per frame and array; subclasses say where each goes."""

    name = ""
    sides: tuple[str, ...] = ()

    def files(self, clip: FrameSequence, number: int, ctx: ExportContext) -> dict[str, str]:
        """``{array name: path relative to out}`` of frame ``number`` of ``clip``."""
        raise NotImplementedError

    def done(self, task: Task, ctx: ExportContext) -> bool:
        return all(ctx.path(rel).exists() for frame in task.frames
                   for rel in self.files(task.clip, frame.number, ctx).values())

    def outputs(self, tasks: list[Task], ctx: ExportContext) -> list[str]:
        """Every file of ``tasks``, relative to ``out``."""
        return [rel for task in tasks for frame in task.frames
                for rel in self.files(task.clip, frame.number, ctx).values()]

    def write(self, task: Task, ctx: ExportContext) -> None:
        made: set[Path] = set()
        with ShardFiles(ctx.dataset) as files:  # this task's handles, closed when it ends
            for frame in task.frames:
                for array, rel in self.files(task.clip, frame.number, ctx).items():
                    path = ctx.path(rel)
                    if path.exists():  # written before a kill: complete (renamed into place)
                        continue
                    if path.parent not in made:
                        ctx.folder(Path(rel).parent)
                        made.add(path.parent)
                    data = encode_png(files.read(frame.file, array, (frame.row, frame.t)), ctx.png_level)
                    write_file(path, data)

    def finish(self, tasks: list[Task], ctx: ExportContext) -> None:
        """Nothing to assemble: every file is in place when its task ends."""
