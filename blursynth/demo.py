"""The demo: both pipelines on the built-in samples, with previews and checks.

:func:`run_demo` makes the synthetic 240 fps clip (:mod:`blursynth.synthetic`),
a highspeed dataset from it, a panorama dataset from the bundled panoramas, a
contact sheet of each, and verifies both datasets' checksums.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from blursynth.run.engine import RunOptions
from blursynth.errors import BlursynthError
from blursynth.highspeed import HighspeedConfig
from blursynth.highspeed import synthesize as synthesize_highspeed
from blursynth.panorama.config import PanoramaConfig
from blursynth.panorama.pipeline import synthesize as synthesize_panorama
from blursynth.curate.preview import contact_sheet
from blursynth.dataset import Manifest, verify
from blursynth.synthetic import write_sample_clip


def _log_nothing(message: str) -> None:
    pass


def run_demo(out: Path, workers: int | None = None,
             log: Callable[[str], None] = _log_nothing) -> dict[str, Manifest]:
    """Make the demo datasets under ``out`` (``clip/``, ``highspeed/``, ``panorama/``).

    Parameters
    ----------
    out : Path
        The demo folder; its datasets are replaced (``--overwrite``), the clip is
        kept when it exists.
    workers : int, optional
        Worker processes (default: all cores); the output does not depend on it.
    log : callable
        Receives one line per step.

    Returns
    -------
    dict of str to Manifest
        The manifest of each dataset, by name.

    Raises
    ------
    BlursynthError
        A dataset whose checksums do not verify.
    """
    out = Path(out)
    clip = out / "clip"
    if not clip.exists():
        write_sample_clip(clip)
    jobs = {
        "highspeed": lambda o: synthesize_highspeed(
            HighspeedConfig(src=(str(clip),), tau=(7, 9, 11), latent=3, repeats=4), o),
        "panorama": lambda o: synthesize_panorama(PanoramaConfig(n=24, latent=3), o),
    }
    manifests = {}
    for name, job in jobs.items():
        dataset = out / name
        log(f"== {name} -> {dataset}")
        manifest = job(RunOptions(out=dataset, workers=workers, overwrite=True))
        contact_sheet(dataset, out / f"{name}.png")
        problems = verify(dataset)
        if problems:
            raise BlursynthError(f"{dataset}: {problems[0]}")
        log(f"   {sum(s['samples'] for s in manifest.shards)} samples, checksums ok, "
            f"preview {out / (name + '.png')}")
        manifests[name] = manifest
    return manifests
