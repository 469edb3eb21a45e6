"""``paired``: ``DIR/<split>/{input,target}/<clip>-<NNNNNN>.png``, identical names on both sides.

BasicSR's PairedImageDataset in folder mode pairs an input with the target of
the same file name; NAFNet, MPRNet, HINet and Restormer read the same
``input``/``target`` folders. The input is one blurred rendition (``--input``,
default ``blur``).
"""

from __future__ import annotations

from blursynth.export.base import ExportContext, FolderLayout
from blursynth.export.plan import FrameSequence


def frame_key(clip: FrameSequence, number: int) -> str:
    """The name shared by input and target (also the LMDB key)."""
    return f"{clip.name}-{number:06d}"


class PairedLayout(FolderLayout):
    name = "paired"

    def files(self, clip: FrameSequence, number: int, ctx: ExportContext) -> dict[str, str]:
        key = frame_key(clip, number)
        return {ctx.input: f"{clip.split}/input/{key}.png", "sharp": f"{clip.split}/target/{key}.png"}


LAYOUT = PairedLayout()
