"""Built-in sample datasets: what ``train-reference MODEL`` trains on without ``--data``.

Like ``yolo train`` with its bundled coco8, a first run needs no data of the
user's: the sample dataset suited to the model's kind of sample is made on
first use from what ships with blursynth, cached per user, and reused.

* **video** models (dtb, …): three synthetic 240 fps clips
  (:mod:`blursynth.synthetic`, seeds 0–2, 256×144, 264 frames each: every
  draw gives at least 13 consecutive exposures) through the highspeed
  pipeline with Kim et al.'s τ ∈ {7, 9, 11} and T drawn in [τ, 2τ), two
  draws per clip; three sources, so the run's split has train, val and test.
* **latent** and **pair** models: 48 panorama samples from the bundled
  panoramas (:mod:`blursynth.panorama`) with 3 latent frames.

The cache folder is ``$BLURSYNTH_CACHE``, else ``$XDG_CACHE_HOME/blursynth``,
else ``~/.cache/blursynth``. A dataset is built in a temporary folder beside
its final name and renamed into place when complete, so an interrupted first
run leaves nothing half-made under the final name, and two first runs at once
both end with the same complete dataset.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable

from blursynth.engine import RunOptions
from blursynth.errors import BlursynthError
from blursynth.shards import Manifest
from blursynth.synthetic import cache_dir  # the one per-user cache folder (also the --src fallback clip)
from blursynth.synthetic import cache_unwritable

__all__ = ["SAMPLE_VERSION", "cache_dir", "sample_dataset"]

# Bump when the recipe of a sample dataset changes, so that old caches are not reused.
SAMPLE_VERSION = 1
N_CLIPS, CLIP_FRAMES, CLIP_SIZE = 3, 264, (256, 144)


def _complete(root: Path) -> bool:
    try:
        return Manifest.load(root).complete
    except (BlursynthError, OSError, ValueError, KeyError):
        return False


def _make_video(work: Path) -> None:
    from blursynth.highspeed import HighspeedConfig, synthesize
    from blursynth.synthetic import write_sample_clip

    clips = work / "clips"
    for seed in range(N_CLIPS):
        write_sample_clip(clips / f"synthetic-{seed}", n_frames=CLIP_FRAMES, size=CLIP_SIZE, seed=seed)
    config = HighspeedConfig(src=(str(clips),), tau=(7, 9, 11), repeats=2)
    synthesize(config, RunOptions(out=work / "data", workers=1, quiet=True))


def _make_frames(work: Path) -> None:
    from blursynth.panorama.config import PanoramaConfig
    from blursynth.panorama.pipeline import synthesize

    synthesize(PanoramaConfig(n=48, latent=3), RunOptions(out=work / "data", workers=1, quiet=True))


_MAKERS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "video": ("sample-video", _make_video,
              f"{N_CLIPS} synthetic 240 fps clips through highspeed (tau 7/9/11)"),
    "latent": ("sample-panorama", _make_frames, "the bundled panoramas, 3 latent frames"),
    "pair": ("sample-panorama", _make_frames, "the bundled panoramas, 3 latent frames"),
}


def sample_dataset(kind: str, log: Callable[[str], None] = print) -> Path:
    """The built-in sample dataset for models of ``kind``, made on first use.

    Parameters
    ----------
    kind : str
        ``video``, ``latent`` or ``pair`` (a model task's ``sample_kind``).
    log : callable
        Receives the one-line announcement.

    Returns
    -------
    Path
        The dataset folder in the cache.

    Raises
    ------
    BlursynthError
        When the cache folder cannot be written.
    """
    name, make, what = _MAKERS[kind]
    root = cache_dir() / f"{name}-v{SAMPLE_VERSION}"
    if _complete(root):
        log(f"no --data: training on the built-in sample dataset {root} ({what})")
        return root
    log(f"no --data: making the built-in sample dataset {root} from {what} (once; cached)")
    work = root.parent / f"{root.name}.tmp-{os.getpid()}"
    try:
        work.mkdir(parents=True, exist_ok=True)
        make(work)
        try:
            os.rename(work / "data", root)
        except OSError:
            if not _complete(root):  # not a concurrent first run that finished first
                shutil.rmtree(root, ignore_errors=True)
                os.rename(work / "data", root)
    except OSError as exc:  # not only permissions: BLURSYNTH_CACHE may be a file, read-only or full
        raise cache_unwritable(exc, "the sample dataset", ", or pass --data") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root
