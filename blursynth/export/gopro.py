"""``gopro``: GoPro_Large's layout, ``DIR/<split>/<clip>/{blur,blur_gamma,sharp}/NNNNNN.png``.

Read by DeepDeblur (Nah et al. 2017) and SimDeblur's GOPRO dataset, among
others. One folder per blurred rendition, named after its response curve as
GoPro ships them: ``blur`` for the linear average, ``blur_gamma`` for the
gamma-encoded one (``blur_srgb``, ``blur_crf`` for the other curves). Frames
are numbered from 000000 without gaps within each clip.
"""

from __future__ import annotations

from blursynth.errors import BlursynthError
from blursynth.export.base import ExportContext, FolderLayout
from blursynth.export.plan import FrameSequence


def rendition_folder(response: str) -> str:
    """GoPro's folder for a rendition encoded with ``response`` (``gamma:2.2`` -> ``blur_gamma``)."""
    curve = response.partition(":")[0]
    return "blur" if curve == "linear" else f"blur_{curve}"


class GoproLayout(FolderLayout):
    name = "gopro"

    def folders(self, ctx: ExportContext) -> dict[str, str]:
        """``{array: folder}`` of the blurred renditions, then ``sharp``."""
        out: dict[str, str] = {}
        for array, response in ctx.renditions.items():
            folder = rendition_folder(response)
            if folder in out.values():
                raise BlursynthError(f"--format gopro: two renditions ({response} and another) would share "
                                     f"the folder {folder}; export them with --format paired --input NAME")
            out[array] = folder
        out["sharp"] = "sharp"
        return out

    def files(self, clip: FrameSequence, number: int, ctx: ExportContext) -> dict[str, str]:
        return {array: f"{clip.split}/{clip.name}/{folder}/{number:06d}.png"
                for array, folder in self.folders(ctx).items()}


LAYOUT = GoproLayout()
