"""``reds``: REDS's layout, ``DIR/<split>_{blur,sharp}/<NNN>/<NNNNNNNN>.png``.

One folder per clip, numbered 000, 001, ... in clip order within the split;
frames numbered from 00000000 without gaps, as REDS ships ``train_blur``/
``train_sharp`` and as BasicSR's REDS loaders and ESTRNN read them.
"""

from __future__ import annotations

from blursynth.export.base import ExportContext, FolderLayout
from blursynth.export.plan import FrameSequence


class RedsLayout(FolderLayout):
    name = "reds"

    def files(self, clip: FrameSequence, number: int, ctx: ExportContext) -> dict[str, str]:
        seq = f"{clip.ordinal:03d}"
        return {ctx.input: f"{clip.split}_blur/{seq}/{number:08d}.png",
                "sharp": f"{clip.split}_sharp/{seq}/{number:08d}.png"}


LAYOUT = RedsLayout()
