"""The per-user cache folder: what blursynth makes once and keeps (the sample clip, the
sample datasets and reference test sets of the reference models, video frame counts)."""

from __future__ import annotations

from pathlib import Path

from blursynth.errors import BlursynthError


def cache_dir() -> Path:
    """Where blursynth keeps what it makes once per user (the sample clip, the sample
    datasets of ``train-reference``): ``$BLURSYNTH_CACHE``, else
    ``$XDG_CACHE_HOME/blursynth``, else ``~/.cache/blursynth``."""
    import os

    if os.environ.get("BLURSYNTH_CACHE"):
        return Path(os.environ["BLURSYNTH_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "blursynth"


def cache_unwritable(exc: OSError, what: str, hint: str = "") -> BlursynthError:
    """The one-line error for a cache folder that cannot be written (any ``OSError``:
    not a folder, read-only, full, no permission), naming the path and what to do.

    Parameters
    ----------
    exc : OSError
        What the write raised.
    what : str
        What was being written (``"the built-in sample clip"``).
    hint : str
        Another way out, appended (``", or pass --data"``).
    """
    where = exc.filename or cache_dir()
    return BlursynthError(f"{where}: cannot write {what} there ({exc.strerror or exc}); "
                          f"set BLURSYNTH_CACHE to a writable folder{hint}")
