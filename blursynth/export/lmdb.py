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
"""

from __future__ import annotations

import pickle
import shutil

import lmdb

from blursynth.export.base import ExportContext, FrameReader, encode_png, write_file
from blursynth.export.paired import frame_key
from blursynth.export.plan import Task

PARTS = ".parts"
SIDES = ("input", "target")
# Puts per write transaction: bounds LMDB's dirty-page memory on large exports.
TXN_PUTS = 256
PAGE = 4096


def _part(task: Task, ctx: ExportContext):
    return ctx.path(f"{PARTS}/task-{task.id:07d}.pkl")


class LmdbLayout:
    name = "lmdb"

    def done(self, task: Task, ctx: ExportContext) -> bool:
        return _part(task, ctx).exists()

    def write(self, task: Task, ctx: ExportContext) -> None:
        rows = []
        with FrameReader(ctx.dataset) as reader:
            for frame in task.frames:
                pair = [reader.frame(array, frame.file, frame.row, frame.t) for array in (ctx.input, "sharp")]
                h, w = pair[0].shape[:2]
                rows.append((frame_key(task.clip, frame.number), h, w,
                             [encode_png(image, ctx.png_level) for image in pair]))
        path = _part(task, ctx)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_file(path, pickle.dumps((task.clip.split, rows), protocol=5))

    def finish(self, tasks: list[Task], ctx: ExportContext) -> None:
        """Build every split's two databases from the part files, in task order."""
        parts = {}
        for task in tasks:
            parts.setdefault(task.clip.split, []).append(_part(task, ctx))
        for split, paths in sorted(parts.items()):
            sizes = [0, 0]
            for path in paths:  # map size from the data, so that it is the same on every run
                _, rows = pickle.loads(path.read_bytes())
                for _key, _h, _w, values in rows:
                    for side, value in enumerate(values):
                        sizes[side] += (len(value) // PAGE + 2) * PAGE
            for side, name in enumerate(SIDES):
                folder = ctx.path(f"{split}/{name}.lmdb")
                if folder.exists():  # a build cut short by a kill: start it again
                    shutil.rmtree(folder)
                folder.mkdir(parents=True)
                env = lmdb.open(str(folder), map_size=2 * sizes[side] + (1 << 20), subdir=True)
                meta = []
                try:
                    txn, puts = env.begin(write=True), 0
                    for path in paths:
                        _, rows = pickle.loads(path.read_bytes())
                        for key, h, w, values in rows:
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
        """Remove the part files once the databases are recorded as complete."""
        shutil.rmtree(ctx.path(PARTS), ignore_errors=True)


LAYOUT = LmdbLayout()
