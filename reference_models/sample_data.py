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
made and cached the same way, from sources that no default dataset uses, six
each, with exact blur of the kind of the data being validated:

* highspeed: the synthetic clip generator at the seeds in
  :data:`REFERENCE_SEEDS`, through highspeed (Eq. 1 averaging);
* panorama: six real CC0 panoramas shipped for this purpose and reserved (no
  default dataset uses them: ``blursynth/data/reference-panoramas``,
  :func:`blursynth.sources.panoramas.reserved_panoramas`), through panorama
  (Slerp rotations) with its default camera. Procedurally made panoramas were
  tried first and dropped: a model trained on the bundled real scenes gained
  +0.06 dB on them against +0.31 dB on these (docs/benchmarks.md).

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


# Seeds of the clips of the highspeed reference test set, reserved: the sample
# datasets above use clip seeds 0-2 and ``blursynth sample`` defaults to 0. The
# panorama reference set draws its camera motions with the first.
REFERENCE_SEEDS = tuple(range(900_001, 900_007))
# Bump when a reference test set's recipe changes.
REFERENCE_VERSION = 2
REFERENCE_KINDS = ("highspeed", "panorama")
REF_CLIP_FRAMES = 160
# Samples drawn from each reserved panorama: single blurred images, or 8-frame sequences.
REF_PANORAMA_STILLS, REF_PANORAMA_SEQUENCES = 8, 4


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
    """The six reserved real panoramas through panorama (Slerp), the default camera."""
    def make(work: Path) -> None:
        from blursynth.panorama.config import PanoramaConfig
        from blursynth.panorama.pipeline import synthesize
        from blursynth.sources.panoramas import reserved_panoramas

        sources = reserved_panoramas()
        per = REF_PANORAMA_SEQUENCES if seq_len > 1 else REF_PANORAMA_STILLS
        config = PanoramaConfig(src=tuple(map(str, sources)), n=per * len(sources), per_panorama=per,
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
        The dataset folder in the cache (six sources: 76 highspeed samples with no
        latent frames; 48 panorama stills or 24 panorama sequences).

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
        what = "the 6 reserved CC0 panoramas (blursynth/data/reference-panoramas) through panorama"
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
