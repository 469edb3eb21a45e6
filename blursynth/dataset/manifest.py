"""``manifest.json``: what a dataset is and which shards hold it (docs/format.md).

:meth:`Manifest.load` is the one place where blursynth reads shard names, and
refuses any that is not a plain ``shard-NNNNN.h5`` inside the dataset folder.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from blursynth.budget import SHARD_PATTERN
from blursynth.atomic import atomic_write_bytes
from blursynth.dataset.format import FORMAT_VERSION, MANIFEST, SCHEMA, config_fingerprint
from blursynth.errors import BlursynthError
from blursynth.jsondoc import load_json
from blursynth.version import __version__

__all__ = ["Manifest"]


@dataclass
class Manifest:
    """``manifest.json``: what a dataset is and which shards hold it (docs/format.md).

    Attributes
    ----------
    kind : str
    config : dict
        The resolved config that determines the content.
    seed : int
    n_samples : int
        Samples planned.
    shard_size : int
    compression : str
    shards : list of dict
        ``{"index", "file", "samples", "sha256"}`` per finished shard (and
        ``"excluded"`` sources, with ``--skip-bad``).
    skipped : list of dict
        Sources left out and why.
    complete : bool
        Whether the run finished.
    version : str
        The blursynth version that wrote it.
    """
    kind: str
    config: dict
    seed: int
    n_samples: int
    shard_size: int
    compression: str
    shards: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)  # per-source notes (a video's frame counts)
    complete: bool = False
    version: str = __version__
    format_version: int = FORMAT_VERSION
    # First sample of each shard when shards are not all ``shard_size`` long
    # (a new shard starts where the frame size changes); None: uniform shards.
    shard_starts: list[int] | None = None

    @property
    def n_shards(self) -> int:
        """Shards the plan is cut into."""
        if self.shard_starts is not None:
            return len(self.shard_starts)
        return -(-self.n_samples // self.shard_size) if self.n_samples else 0

    def shard_of(self, sample: int) -> int:
        """The index of the shard that holds sample ``sample``."""
        if self.shard_starts is None:
            return sample // self.shard_size
        return bisect.bisect_right(self.shard_starts, sample) - 1

    @property
    def fingerprint(self) -> str:
        """sha256 of the kind and :meth:`identity`; recorded in every shard."""
        return config_fingerprint(self.kind, self.identity())

    def identity(self) -> dict:
        """What must match for a re-run to resume instead of refusing."""
        identity = {"config": self.config, "seed": self.seed, "shard_size": self.shard_size,
                    "compression": self.compression, "n_samples": self.n_samples}
        if self.shard_starts is not None:
            identity["shard_starts"] = self.shard_starts
        return identity

    def to_json(self) -> dict:
        """The JSON object written to ``manifest.json``."""
        layout = {} if self.shard_starts is None else {"shard_starts": self.shard_starts}
        return {
            "format": SCHEMA, "format_version": FORMAT_VERSION, "kind": self.kind,
            "blursynth_version": self.version, "seed": self.seed, "config": self.config,
            "fingerprint": self.fingerprint, "n_samples": self.n_samples,
            "shard_size": self.shard_size, "compression": self.compression,
            "n_shards": self.n_shards, **layout, "complete": self.complete,
            "samples_written": sum(s["samples"] for s in self.shards),
            "shards": sorted(self.shards, key=lambda s: s["index"]), "skipped": self.skipped,
            "sources": self.sources,
        }

    def save(self, out: Path) -> None:
        """Replace ``out/manifest.json`` atomically (:func:`blursynth.atomic.atomic_write_bytes`)."""
        atomic_write_bytes(Path(out) / MANIFEST, (json.dumps(self.to_json(), indent=1) + "\n").encode())

    @classmethod
    def load(cls, out: Path) -> "Manifest":
        """Read and check ``out/manifest.json``.

        This is the one place where blursynth reads shard names: every entry's
        ``file`` must be a plain name in the shard pattern (``shard-00003.h5``),
        so that a reader (``verify``, ``info``, ``preview``, training,
        evaluation) only ever opens files inside ``out``.

        Raises
        ------
        BlursynthError
            No manifest, one that is not a regular file or is over its size cap,
            an unreadable one (bad JSON, nested too deep, a number that is not
            finite), another format, a shard name that
            is not a plain ``shard-NNNNN.h5``, or a field of the wrong type.
        """
        path = Path(out) / MANIFEST
        # A regular file within the manifest cap, depth-limited, finite numbers (blursynth.jsondoc).
        data = load_json(path, "manifest", missing=f"{out}: not a blursynth dataset (no {MANIFEST})")
        if not isinstance(data, dict) or data.get("format") != SCHEMA:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise BlursynthError(f"{path}: format {found!r} is not {SCHEMA}")
        version = data.get("format_version", 1)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise BlursynthError(f"{path}: format_version {version!r} is newer than this blursynth reads "
                                 f"({FORMAT_VERSION}); upgrade blursynth")

        def field_of(key, types, check=lambda v: True, default=None, required=True):
            if key not in data:
                if required:
                    raise BlursynthError(f"{path}: the manifest has no {key!r}")
                return default
            value = data[key]
            if not isinstance(value, types) or (isinstance(value, bool) and types is not bool) \
                    or not check(value):
                raise BlursynthError(f"{path}: {key!r} has a bad value {_short(value)}")
            return value

        kind = field_of("kind", str)
        config = field_of("config", dict)
        seed = field_of("seed", int)
        n_samples = field_of("n_samples", int, lambda v: v >= 0)
        shard_size = field_of("shard_size", int, lambda v: v >= 1)
        compression = field_of("compression", str)
        complete = field_of("complete", bool)
        skipped = field_of("skipped", list, default=[], required=False)
        sources = field_of("sources", list, default=[], required=False)
        starts = field_of("shard_starts", list, required=False,
                          check=lambda v: all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v))
        shards = [_checked_entry(path, e) for e in field_of("shards", list)]
        return cls(kind=kind, config=config, seed=seed, n_samples=n_samples, shard_size=shard_size,
                   compression=compression, shards=shards, skipped=skipped, sources=sources, complete=complete,
                   version=str(data.get("blursynth_version", "?")), format_version=version, shard_starts=starts)

    def shard_path(self, out: Path, entry: dict) -> Path:
        """The path of a shard entry of this manifest (its name was checked by :meth:`load`)."""
        return Path(out) / entry["file"]


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:28] + "..." + text[-29:]


def _checked_entry(path: Path, entry) -> dict:
    """A manifest's shard entry, refused unless its names and numbers are well-formed."""
    if not isinstance(entry, dict):
        raise BlursynthError(f"{path}: a shard entry is not an object ({_short(entry)})")
    name = entry.get("file")
    if not isinstance(name, str) or SHARD_PATTERN.fullmatch(name) is None:
        raise BlursynthError(f"{path}: shard file name {_short(name)} is not a plain shard-NNNNN.h5 name "
                             "inside the dataset folder; refusing to read it")
    for key in ("index", "samples"):
        value = entry.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise BlursynthError(f"{path}: {name}: {key!r} has a bad value {_short(value)}")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or re.fullmatch(r"[0-9a-f]{64}", digest) is None:
        raise BlursynthError(f"{path}: {name}: 'sha256' has a bad value {_short(digest)}")
    return entry

