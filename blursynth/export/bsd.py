"""``bsd``: the BSD layout of ESTRNN, ``DIR/<split>/<NNN>/{Blur,Sharp}/RGB/<NNNNNNNN>.png``.

One folder per clip, numbered in clip order within the split; frames numbered
from 00000000 with no gaps, because ESTRNN and SimDeblur's BSD loader compute
the names of a frame's neighbours as n ± k.
"""

from __future__ import annotations

from blursynth.export.base import ExportContext, FolderLayout
from blursynth.export.plan import FrameSequence


class BsdLayout(FolderLayout):
    name = "bsd"

    def files(self, clip: FrameSequence, number: int, ctx: ExportContext) -> dict[str, str]:
        seq = f"{clip.split}/{clip.ordinal:03d}"
        return {ctx.input: f"{seq}/Blur/RGB/{number:08d}.png", "sharp": f"{seq}/Sharp/RGB/{number:08d}.png"}


LAYOUT = BsdLayout()
