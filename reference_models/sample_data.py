"""Built-in sample datasets: what ``train-reference MODEL`` trains on without ``--data``.

Like ``yolo train`` with its bundled coco8, a first run needs no data of the
user's: the sample dataset of the data form the model learns from is made on
first use from what ships with blursynth, cached per user, and reused.

* models that learn from **video**: three synthetic 240 fps clips
  (:mod:`blursynth.synthetic`, seeds 0–2, 256×144, 264 frames each: every
  draw gives at least 13 consecutive exposures) through the highspeed
  pipeline with Kim et al.'s τ ∈ {7, 9, 11} and T drawn in [τ, 2τ), two
  draws per clip; three sources, so the run's split has train, val and test.
* models that learn from **latent** or **pair** data: 48 panorama samples from the bundled
  panoramas (:mod:`blursynth.panorama`) with 3 latent frames.

The **reference test sets** of ``validate`` (:func:`reference_test_set`) are
made and cached the same way, from sources that no default dataset uses: the
synthetic clip generator and procedurally made panoramas
(:func:`blursynth.synthetic.synthetic_panorama`) at the seeds in
:data:`REFERENCE_SEEDS`, six sources each, with exact blur (Eq. 1 averaging
through highspeed, Slerp rotations through panorama) of the kind of the data
being validated.

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

from blursynth.run.engine import RunOptions
from blursynth.errors import BlursynthError
from blursynth.dataset import Manifest
from blursynth.cache import cache_dir  # the one per-user cache folder (also the --src fallback clip)
from blursynth.cache import cache_unwritable

__all__ = ["REFERENCE_KINDS", "REFERENCE_SEEDS", "SAMPLE_VERSION", "cache_dir", "reference_test_set", "sample_dataset"]

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


# Seeds of the clips and panoramas of the reference test sets, reserved: the sample
# datasets above use clip seeds 0-2, ``blursynth sample`` defaults to 0, and no
# default dataset is made from a procedural panorama.
REFERENCE_SEEDS = tuple(range(900_001, 900_007))
# Bump when a reference test set's recipe changes.
REFERENCE_VERSION = 1
REFERENCE_KINDS = ("highspeed", "panorama")
REF_CLIP_FRAMES, REF_PANORAMA_WIDTH = 160, 2048


def _reference_highspeed(latent: int) -> Callable[[Path], None]:
    """Six synthetic clips at reserved seeds through highspeed (Eq. 1), one draw each."""
    def make(work: Path) -> None:
        from blursynth.highspeed import HighspeedConfig, synthesize
        from blursynth.synthetic import write_sample_clip

        clips = work / "clips"
        for seed in REFERENCE_SEEDS:
            write_sample_clip(clips / f"reference-{seed}", n_frames=REF_CLIP_FRAMES, size=CLIP_SIZE, seed=seed)
        # latent frames must fall on source frames: K - 1 divides tau - 1
        taus = tuple(t for t in (7, 9, 11) if not latent or (t - 1) % (latent - 1) == 0) or (latent,)
        config = HighspeedConfig(src=(str(clips),), tau=taus, latent=latent, seed=REFERENCE_SEEDS[0])
        synthesize(config, RunOptions(out=work / "data", workers=1, quiet=True))
    return make


def _reference_panorama(seq_len: int, latent: int) -> Callable[[Path], None]:
    """Six procedural panoramas at reserved seeds through panorama (Slerp), the default camera."""
    def make(work: Path) -> None:
        import cv2

        from blursynth.panorama.config import PanoramaConfig
        from blursynth.panorama.pipeline import synthesize
        from blursynth.synthetic import synthetic_panorama

        folder = work / "panoramas"
        folder.mkdir(parents=True, exist_ok=True)
        for seed in REFERENCE_SEEDS:
            if not cv2.imwrite(str(folder / f"reference-{seed}.png"), synthetic_panorama(REF_PANORAMA_WIDTH, seed)):
                raise OSError(f"cannot write {folder}")
        per = 2 if seq_len > 1 else 4
        config = PanoramaConfig(src=(str(folder),), n=per * len(REFERENCE_SEEDS), per_panorama=per,
                                seq_len=seq_len, latent=latent, seed=REFERENCE_SEEDS[0])
        synthesize(config, RunOptions(out=work / "data", workers=1, quiet=True))
    return make


_MAKERS: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "video": ("sample-video", _make_video,
              f"{N_CLIPS} synthetic 240 fps clips through highspeed (tau 7/9/11)"),
    "latent": ("sample-panorama", _make_frames, "the bundled panoramas, 3 latent frames"),
    "pair": ("sample-panorama", _make_frames, "the bundled panoramas, 3 latent frames"),
}


def sample_dataset(form: str, log: Callable[[str], None] = print) -> Path:
    """The built-in sample dataset for models that learn from data of ``form``, made on first use.

    Parameters
    ----------
    form : str
        ``video``, ``latent`` or ``pair`` (a model task's ``learns_from``).
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
    name, make, what = _MAKERS[form]
    root = cache_dir() / f"{name}-v{SAMPLE_VERSION}"
    if _complete(root):
        log(f"no --data: training on the built-in sample dataset {root} ({what})")
        return root
    log(f"no --data: making the built-in sample dataset {root} from {what} (once; cached)")
    return _cached(root, make, "the sample dataset", ", or pass --data")


def reference_test_set(kind: str, video: bool, latent: int = 0, log: Callable[[str], None] = print) -> Path:
    """The built-in reference test set of ``validate`` for data of ``kind``, made on first use.

    Parameters
    ----------
    kind : {"highspeed", "panorama"}
        How the data being validated was made (its manifest's ``kind``): the
        test set holds blur of that kind.
    video : bool
        Runs of consecutive exposures (for video models): highspeed clips give
        them anyway; panorama data is made in sequence mode (8 frames per sample).
    latent : int
        Latent frames per blurred frame (0: none).
    log : callable
        Receives a one-line announcement when the set is made.

    Returns
    -------
    Path
        The dataset folder in the cache (six sources).

    Raises
    ------
    BlursynthError
        When the cache folder cannot be written.
    """
    if kind not in REFERENCE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {REFERENCE_KINDS}")
    if kind == "highspeed":
        name, make = f"reference-highspeed-k{latent}", _reference_highspeed(latent)
        what = f"{len(REFERENCE_SEEDS)} synthetic 240 fps clips (reserved seeds) through highspeed"
    else:
        seq_len = 8 if video else 1
        name, make = f"reference-panorama-l{seq_len}-k{latent}", _reference_panorama(seq_len, latent)
        what = f"{len(REFERENCE_SEEDS)} procedural panoramas (reserved seeds) through panorama"
    root = cache_dir() / f"{name}-v{REFERENCE_VERSION}"
    if not _complete(root):
        log(f"making the built-in reference test set {root} from {what} (once; cached)")
    return _cached(root, make, "the reference test set", ", or pass --test")


def _cached(root: Path, make: Callable[[Path], None], what: str, hint: str) -> Path:
    """``root``, made by ``make`` unless complete: built beside it, renamed into place.

    An interrupted first run leaves nothing half-made under ``root``, and two
    first runs at once both end with the same complete dataset.
    """
    if _complete(root):
        return root
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
        raise cache_unwritable(exc, what, hint) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root
