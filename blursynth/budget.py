"""Estimates made before planning: memory per sample, samples, disk space.

Every check here runs on the config and the probed sources alone, in time
independent of the number of samples, so an absurd option (``--n 100000000``,
``--seq-len 1000000000``, ``--size 100000x100000``, ``--max-step 1e-300``)
is refused at once, with the estimate, instead of hanging in planning or
failing half-way through a run. See docs/format.md ("Disk space").
"""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

from blursynth.errors import BlursynthError

# The name of a finished shard (the one definition; blursynth.dataset.format and .manifest use it).
SHARD_PATTERN = re.compile(r"shard-\d{5,}\.h5")
# Most samples one run plans: a spec is a small Python object (about 1 KB with
# its frame names), so ten million of them already take gigabytes of memory.
MAX_PLANNED_SAMPLES = 10_000_000
# Most frames averaged into one blurred frame (panorama): beyond this the
# motion is sampled far finer than any pixel can show.
MAX_FRAMES_PER_EXPOSURE = 100_000
# Bytes a sample adds to a shard besides its frames (meta values, chunk index, checksums).
SAMPLE_OVERHEAD = 1024
# Free space a shard writer always leaves: the shard's metadata at commit, the manifest.
WRITE_RESERVE = 256 * 1024
# Room left on the disk besides the estimate (HDF5 metadata, manifest, other writers).
DISK_MARGIN = 64 * 2**20


def human(nbytes: float) -> str:
    """``1536`` -> ``"1.5 KB"`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(nbytes) < 1024 or unit == "PB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError  # pragma: no cover


def count(n: int, noun: str) -> str:
    """``count(1, "shard")`` -> ``"1 shard"``, ``count(10000, "sample")`` -> ``"10,000 samples"``."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def physical_memory() -> int:
    """Bytes of RAM of this machine (0 when the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0


def frame_bytes(seq_len: int, latent: int, height: int, width: int, renditions: int = 1) -> int:
    """Bytes of one sample's uint8 frames, ``[L, (K,) H, W, 3]`` each: the
    ``renditions`` blurred arrays (``blur``, ``blur_<kind>``), sharp and latent."""
    return seq_len * (renditions + 1 + latent) * height * width * 3


def check_sample_memory(nbytes: float, what: str) -> None:
    """Refuse a sample whose working memory exceeds this machine's RAM.

    Parameters
    ----------
    nbytes : float
        Estimated bytes one worker holds while rendering one sample.
    what : str
        The options that set it, for the message (``"--size 100000x100000, --latent 3"``).
    """
    ram = physical_memory()
    if ram and nbytes > ram:
        raise BlursynthError(f"{what}: one sample needs about {human(nbytes)} of memory while rendering, "
                             f"more than this machine's {human(ram)}; use smaller values")


def check_plan_size(n_samples: float, what: str) -> None:
    """Refuse a plan of more than :data:`MAX_PLANNED_SAMPLES` samples."""
    if n_samples > MAX_PLANNED_SAMPLES:
        raise BlursynthError(f"{what}: the plan would hold about {n_samples:.3g} samples; one run makes at most "
                             f"{MAX_PLANNED_SAMPLES:,} (split the work into several runs)")


def own_bytes(out: Path) -> int:
    """Bytes of the finished shards already in ``out`` (a resume keeps them)."""
    total = 0
    try:
        entries = list(Path(out).iterdir())
    except OSError:
        return 0
    for path in entries:
        if SHARD_PATTERN.fullmatch(path.name):
            try:
                total += path.lstat().st_size
            except OSError:
                pass
    return total


def free_bytes(out: Path) -> int | None:
    """Free bytes on the file system that holds ``out`` (or its nearest existing parent)."""
    path = Path(out).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def check_disk(out: Path, needed: float, what: str) -> str:
    """Refuse, naming the folder and the space needed, when ``out`` cannot hold ``needed`` bytes.

    Finished shards already in ``out`` count as written (a resume keeps them).

    Parameters
    ----------
    out : Path
        The ``--out`` folder (it need not exist yet).
    needed : float
        Estimated bytes of the whole dataset.
    what : str
        What the estimate is of, for the message (``"10000 samples"``).

    Returns
    -------
    str
        The estimate and the free space in one line, for the run to say before
        its first sample (``"10,000 samples: about 1.9 GB of disk space; 50.3 GB is free there"``).
    """
    free = free_bytes(out)
    line = f"{what}: about {human(needed)} of disk space"
    if free is None:
        return line
    missing = needed - own_bytes(out) + DISK_MARGIN
    if missing > free:
        # The margin is said: "need 16.5 KB, only 50.0 MB free" reads as a bug without it.
        raise BlursynthError(f"--out {out}: {what} need about {human(needed)} of disk space plus a "
                             f"{human(DISK_MARGIN)} safety margin, and only {human(free)} is free there; "
                             "free space or choose another --out")
    return f"{line}; {human(free)} is free there"


def ensure_room(folder: Path, nbytes: int, writers: int = 1) -> None:
    """Raise :func:`disk_full_error` unless ``folder`` has room for ``nbytes``
    from each of ``writers`` concurrent writers, plus :data:`WRITE_RESERVE`.

    Called before every sample a shard writer appends: HDF5 must never meet
    a full disk itself, because h5py then cannot close the file cleanly (it
    prints errors from finalizers, or crashes).
    """
    free = free_bytes(folder)
    if free is not None and free < nbytes * max(1, writers) + WRITE_RESERVE:
        raise disk_full_error(folder)


def is_disk_full(exc: BaseException, out: Path) -> bool:
    """Whether an error while writing into ``out`` means that its disk is full.

    HDF5 does not always keep the ``errno`` (h5py raises ``OSError`` or
    ``RuntimeError`` with the C library's message); a write error with less
    than :data:`DISK_MARGIN` free counts as a full disk too.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if "No space left" in str(exc) or "Disk quota" in str(exc):
        return True
    free = free_bytes(out)
    return isinstance(exc, (OSError, RuntimeError)) and free is not None and free < DISK_MARGIN


def disk_full_error(out: Path) -> BlursynthError:
    """The one-line error for a disk that filled up during a run."""
    free = free_bytes(out)
    left = f" ({human(free)} left)" if free is not None else ""
    return BlursynthError(f"--out {out}: the disk is full{left}; free space, then re-run the same command "
                          "to resume")
