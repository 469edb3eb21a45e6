"""``lmdb``: BasicSR's LMDB layout, ``DIR/<split>/{input,target}.lmdb``.

Each ``.lmdb`` folder holds ``data.mdb``, ``lock.mdb`` and ``meta_info.txt``
(written with the ``lmdb`` package). Values are PNG-encoded frames; keys are
the ``paired`` layout's file names without ``.png``, the same on both sides.
``meta_info.txt`` has one line per key, ``KEY.png (H,W,3) LEVEL`` (LEVEL: the
PNG compression level), which is what BasicSR's ``paired_paths_from_lmdb``
reads (it takes the key up to the first ``.``; keys hold no ``.``).

Workers encode the frames of their task into a part file under
``DIR/.parts/``; the databases are built at the end in one process, in task
order, so ``data.mdb`` is the same for any number of workers.

A part file (``task-NNNNNNN.part``) is one line of JSON, then raw bytes: the
line is ``{"format": "blursynth-lmdb-part/1", "split": ..., "rows": [[key, h,
w, input bytes, target bytes], ...]}`` and the bytes are each row's input PNG
then target PNG, in row order. Nothing read from an export folder is ever
unpickled (issue 19): a part that does not parse as this is refused in one line.
"""

from __future__ import annotations

import json
import os
import re

import lmdb

from blursynth.atomic import final_name
from blursynth.errors import BlursynthError
from blursynth.dataset import ShardFiles
from blursynth.export.base import ExportContext, write_file
from blursynth.export.paired import frame_key
from blursynth.export.plan import Task
from blursynth.dataset.outdir import remove_own
from blursynth.png import encode_png

PARTS = ".parts"
PART_FORMAT = "blursynth-lmdb-part/1"
# Part files of this layout; ``.pkl`` is the name older versions gave them (never read,
# only removed with the others once the databases are complete).
_PART_NAME = re.compile(r"task-\d{7}\.(?:part|pkl)")
SIDES = ("input", "target")
# The files of a database folder (lmdb's two, and BasicSR's list of keys).
DB_FILES = ("data.mdb", "lock.mdb", "meta_info.txt")
# Puts per write transaction: bounds LMDB's dirty-page memory on large exports.
TXN_PUTS = 256
PAGE = 4096


def _part_name(task: Task) -> str:
    return f"{PARTS}/task-{task.id:07d}.part"


def _part(task: Task, ctx: ExportContext):
    return ctx.path(_part_name(task))


def part_bytes(split: str, rows: list[tuple[str, int, int, list[bytes]]]) -> bytes:
    """A part file: one JSON line describing ``rows``, then their PNG bytes (input, target per row)."""
    head = {"format": PART_FORMAT, "split": split,
            "rows": [[key, h, w, len(values[0]), len(values[1])] for key, h, w, values in rows]}
    return json.dumps(head).encode() + b"\n" + b"".join(v for *_, values in rows for v in values)


def read_part(data: bytes, name: str = "part") -> tuple[str, list[tuple[str, int, int, list[bytes]]]]:
    """``(split, rows)`` of a part file written by :func:`part_bytes`.

    Raises
    ------
    BlursynthError
        ``data`` is not such a part file (one line naming ``name``).
    """
    head, _, body = data.partition(b"\n")
    bad = BlursynthError(f"{name}: not a part file of blursynth's lmdb export; remove it and re-run")
    try:
        doc = json.loads(head)
    except ValueError:
        raise bad from None
    if not (isinstance(doc, dict) and doc.get("format") == PART_FORMAT and isinstance(doc.get("split"), str)
            and isinstance(doc.get("rows"), list)):
        raise bad
    rows, at = [], 0
    for row in doc["rows"]:
        if not (isinstance(row, list) and len(row) == 5 and isinstance(row[0], str) and row[0].isascii()
                and all(type(v) is int and v >= 0 for v in row[1:])):
            raise bad
        key, h, w, n_in, n_out = row
        rows.append((key, h, w, [body[at:at + n_in], body[at + n_in:at + n_in + n_out]]))
        at += n_in + n_out
    if at != len(body):
        raise bad
    return doc["split"], rows


class LmdbLayout:
    name = "lmdb"

    def done(self, task: Task, ctx: ExportContext) -> bool:
        return _part(task, ctx).exists()

    def write(self, task: Task, ctx: ExportContext) -> None:
        rows = []
        with ShardFiles(ctx.dataset) as files:  # this task's handles, closed when it ends
            for frame in task.frames:
                pair = [files.read(frame.file, array, (frame.row, frame.t)) for array in (ctx.input, "sharp")]
                h, w = pair[0].shape[:2]
                rows.append((frame_key(task.clip, frame.number), h, w,
                             [encode_png(image, ctx.png_level) for image in pair]))
        ctx.folder(PARTS)
        write_file(_part(task, ctx), part_bytes(task.clip.split, rows))

    def outputs(self, tasks: list[Task], ctx: ExportContext) -> list[str]:
        """The part files and each database's ``meta_info.txt``, relative to ``out``."""
        splits = sorted({task.clip.split for task in tasks})
        return [_part_name(task) for task in tasks] + [f"{split}/{side}.lmdb/meta_info.txt"
                                                       for split in splits for side in SIDES]

    def _rows(self, path, ctx: ExportContext):
        return read_part(path.read_bytes(), f"--out {ctx.out}: {path.relative_to(ctx.out)}")[1]

    def finish(self, tasks: list[Task], ctx: ExportContext) -> None:
        """Build every split's two databases from the part files, in task order."""
        parts = {}
        for task in tasks:
            parts.setdefault(task.clip.split, []).append(_part(task, ctx))
        for split, paths in sorted(parts.items()):
            sizes = [0, 0]
            for path in paths:  # map size from the data, so that it is the same on every run
                for _key, _h, _w, values in self._rows(path, ctx):
                    for side, value in enumerate(values):
                        sizes[side] += (len(value) // PAGE + 2) * PAGE
            for side, name in enumerate(SIDES):
                folder = ctx.folder(f"{split}/{name}.lmdb")
                for stale in DB_FILES:  # a build cut short by a kill: start it again
                    try:
                        (folder / stale).unlink(missing_ok=True)
                    except OSError as exc:
                        raise BlursynthError(f"--out {ctx.out}: cannot remove {split}/{name}.lmdb/{stale} "
                                             f"({exc.strerror})") from None
                env = lmdb.open(str(folder), map_size=2 * sizes[side] + (1 << 20), subdir=True)
                meta = []
                try:
                    txn, puts = env.begin(write=True), 0
                    for path in paths:
                        for key, h, w, values in self._rows(path, ctx):
                            txn.put(key.encode("ascii"), values[side])
                            meta.append(f"{key}.png ({h},{w},3) {ctx.png_level}\n")
                            puts += 1
                            if puts % TXN_PUTS == 0:
                                txn.commit()
                                txn = env.begin(write=True)
                    txn.commit()
                    env.sync(True)
                finally:
                    env.close()
                write_file(folder / "meta_info.txt", "".join(meta).encode())

    def cleanup(self, ctx: ExportContext) -> None:
        """Remove the part files once the databases are recorded as complete (only those, and
        their temporaries; the folder goes when nothing else is in it)."""
        parts = ctx.path(PARTS)
        remove_own(parts, lambda name: _PART_NAME.fullmatch(final_name(name) or name) is not None)
        try:
            os.rmdir(parts)
        except OSError:
            pass  # missing, or holds what someone else put there


LAYOUT = LmdbLayout()
