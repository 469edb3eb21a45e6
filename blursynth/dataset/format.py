"""The dataset format: the names blursynth gives its files and arrays, and its version.

A dataset is a folder of HDF5 shards tied together by ``manifest.json``; the
layout is a contract documented in ``docs/format.md``. This module says what
the names are (shards, temporaries, frame arrays, renditions) and how a
dataset's identity is hashed; :mod:`blursynth.dataset.writer` writes the files,
:mod:`blursynth.dataset.manifest` the manifest, :mod:`blursynth.dataset.reader`
reads them back.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from blursynth.budget import SHARD_PATTERN
from blursynth.atomic import TMP_MARK

__all__ = [
    "COMPRESSIONS", "FORMAT_VERSION", "FRAME_ARRAYS", "MANIFEST", "SCHEMA", "Sample", "canonical_json",
    "config_fingerprint", "frame_arrays", "is_frame_array", "is_own_file", "is_temporary", "rendition_array",
    "renditions_of", "shard_name",
]

SCHEMA = "blursynth/1"
# 2: frame chunks carry HDF5's Fletcher-32 checksum. Version 1 (no checksums)
# still reads; see docs/format.md.
FORMAT_VERSION = 2
MANIFEST = "manifest.json"
COMPRESSIONS = ("none", "lzf", "gzip")
# Frame arrays written per sample. Each is uint8 [L, H, W, 3] (latent: [L, K, H, W, 3]).
FRAME_ARRAYS = ("blur", "sharp", "latent")
# Further renditions of ``blur`` (``--response gamma,linear``): ``blur_<curve>``, shaped as ``blur``.
_RENDITION_PATTERN = re.compile(r"blur_[a-z]+")


def rendition_array(curve: str) -> str:
    """The array of a further rendition encoded with response curve ``curve`` (its name without
    parameters, ``linear``, ``gamma``, ...): ``linear`` -> ``blur_linear``."""
    name = f"blur_{curve}"
    if _RENDITION_PATTERN.fullmatch(name) is None:
        raise ValueError(f"not a response curve name: {curve!r}")
    return name


def is_frame_array(name: str) -> bool:
    """Whether ``name`` is a frame array of a shard: ``blur``, ``sharp``, ``latent`` or ``blur_<curve>``."""
    return name in FRAME_ARRAYS or _RENDITION_PATTERN.fullmatch(name) is not None


def frame_arrays(names) -> list[str]:
    """The frame arrays among ``names`` (e.g. an open shard), in the order
    ``blur``, ``blur_<curve>`` (sorted), ``sharp``, ``latent``."""
    def rank(name: str) -> tuple[int, str]:
        if name in FRAME_ARRAYS:  # blur 0, sharp 2, latent 3
            return FRAME_ARRAYS.index(name) + (name != "blur"), ""
        return 1, name  # the renditions, after blur

    return sorted((n for n in names if is_frame_array(n)), key=rank)


def renditions_of(config: dict) -> dict[str, str]:
    """Blurred frame arrays of a dataset made with ``config`` and their response curves.

    ``{"blur": config["response"]}`` for a single curve; with a list of curves
    (``config["responses"]``, see :func:`blursynth.config.resolved_config`) the
    first is ``blur`` and each further one ``blur_<curve>``, in the list's order.
    """
    names = config.get("responses") or [str(config.get("response", "unknown"))]
    out = {"blur": str(names[0])}
    for name in names[1:]:
        out[rendition_array(str(name).partition(":")[0])] = str(name)
    return out


# The names blursynth gives the files it writes into ``--out``, and nothing else:
# a shard, and the temporaries of a shard or of the manifest (``.tmp-<pid>``,
# plus the shard's ``.progress`` count read by the progress bar).
_TEMPORARY_PATTERN = re.compile(
    rf"(?:shard-\d{{5,}}\.h5{re.escape(TMP_MARK)}\d+(?:\.progress)?|{re.escape(MANIFEST)}{re.escape(TMP_MARK)}\d+)")


def shard_name(index: int) -> str:
    """The file name of shard ``index``: ``shard-00003.h5``."""
    return f"shard-{index:05d}.h5"


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file of a (possibly killed) blursynth run.

    Only the exact patterns blursynth writes count (``shard-00003.h5.tmp-812``,
    ``shard-00003.h5.tmp-812.progress``, ``manifest.json.tmp-812``): a user's
    ``notes.tmp-1`` is not one.
    """
    return _TEMPORARY_PATTERN.fullmatch(name) is not None


def is_own_file(name: str) -> bool:
    """Whether ``name`` is a file blursynth writes into ``--out`` (and may delete).

    That is ``manifest.json``, ``shard-NNNNN.h5`` (five or more digits, nothing
    else) and the temporaries of :func:`is_temporary`. ``shard-important.h5``
    is not one.
    """
    return name == MANIFEST or SHARD_PATTERN.fullmatch(name) is not None or is_temporary(name)


@dataclass
class Sample:
    """One rendered sample: frame arrays plus one value per ``meta`` field."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal objects give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def config_fingerprint(kind: str, config: dict) -> str:
    """sha256 of the canonical JSON of ``kind`` and ``config``.

    Parameters
    ----------
    kind : str
        The dataset's pipeline kind (``"highspeed"``, ``"panorama"``; the manifest's ``kind``).
    config : dict
        JSON-serializable.

    Returns
    -------
    str
        64 hex digits.
    """
    return hashlib.sha256(canonical_json({"kind": kind, "config": config}).encode()).hexdigest()

