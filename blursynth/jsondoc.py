"""Small JSON documents that refer to one dataset: selections and split files.

Both are a JSON object with a ``format`` tag and the ``dataset_fingerprint``
(:attr:`blursynth.shards.Manifest.fingerprint`) of the dataset they were made
for. :func:`read_doc` reads one and checks both, with messages that name the
file (or the option that gave it) and the command that makes a new one.
"""

from __future__ import annotations

import json
from pathlib import Path

from blursynth.errors import BlursynthError
from blursynth.shards import Manifest


def read_doc(path: str | Path, fmt: str, *, name: str, what: str, make: str,
             dataset: str | Path | None = None) -> dict:
    """Read the JSON document ``path`` of format ``fmt``; with ``dataset``, check it was made for it.

    Parameters
    ----------
    path : the file.
    fmt : the ``format`` tag it must carry, e.g. ``"blursynth-split/1"``.
    name : how messages name it, e.g. ``"--select sel.json"`` or the path itself.
    what : what it is, for messages: ``"selection"``, ``"split file"``.
    make : the command that makes one, for messages: ``"blursynth filter"``.
    dataset : the dataset folder whose fingerprint ``dataset_fingerprint`` must equal.

    Returns
    -------
    dict
        The document.

    Raises
    ------
    BlursynthError
        One line: missing, unreadable (bad UTF-8 or JSON), not an object of
        format ``fmt``, or made for another dataset.
    """
    try:
        doc = json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BlursynthError(f"{name}: no such {what} (make one with '{make}')") from None
    except (OSError, ValueError) as exc:  # ValueError: bad UTF-8 or bad JSON
        raise BlursynthError(f"{name}: unreadable {what} ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise BlursynthError(f"{name}: not a {what} (format {found!r}, expected {fmt})")
    if dataset is not None and doc.get("dataset_fingerprint") != Manifest.load(dataset).fingerprint:
        raise BlursynthError(f"{name}: the {what} was made for another dataset than {dataset}; "
                             f"make a new one with '{make}'")
    return doc
