"""JSON and TOML documents a user names, parsed with limits and checked against a schema.

Every JSON or TOML file blursynth reads by name goes through here (issue 19,
item 8): manifests (:meth:`blursynth.dataset.manifest.Manifest.load`), selections
(:func:`blursynth.curate.selection.load_selection`), split files
(:func:`blursynth.curate.split.load_split`) and recipes
(:func:`blursynth.recipes.load_recipe`). Each is

* read through :func:`blursynth.infiles.read_input` (a regular file, within a
  size cap for its kind);
* parsed with limits: at most :data:`MAX_DEPTH` levels of nesting, numbers
  finite (JSON's non-standard ``NaN``/``Infinity`` and ``1e999``, TOML's
  ``inf``/``nan``, are refused);
* checked against a schema (:func:`check_schema`) whose types are exact: an
  integer is not ``true``, ``1.9`` or ``"3"``.

Any fault is one :class:`~blursynth.errors.BlursynthError` line that names the
file and, for a schema fault, the field (``indices[0]``).

Selections and split files are tied to one dataset: a JSON object with a
``format`` tag and the ``dataset_fingerprint``
(:attr:`blursynth.dataset.manifest.Manifest.fingerprint`) of the dataset they were made
for; :func:`read_doc` reads one and checks both, with messages that name the
file (or the option that gave it) and the command that makes a new one.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any, Callable

from blursynth.errors import BlursynthError
from blursynth.infiles import read_input

__all__ = ["MAX_DEPTH", "Map", "Opt", "Where", "check_schema", "load_json", "load_toml", "parse_json",
           "parse_toml", "read_doc"]

# Deeper than any document blursynth writes (a manifest's config is 3 levels),
# shallow enough that no reader recurses into trouble.
MAX_DEPTH = 32


def _not_a_number(word: str):
    raise ValueError(f"{word} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise ValueError(f"{text} is not a finite number")
    return value


def _check_tree(doc: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and non-finite floats (iteratively: no recursion)."""
    todo = [(doc, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            todo.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))


def _text(data: bytes, name: str, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BlursynthError(f"{name}: unreadable {what} (not UTF-8 text: byte {exc.start}); "
                             "save it as UTF-8") from None


def parse_json(data: bytes, name: str, what: str) -> Any:
    """Parse JSON bytes with the limits above.

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        How messages name the file.
    what : str
        What it is, for messages (``"manifest"``).

    Raises
    ------
    BlursynthError
        ``NAME: unreadable WHAT (REASON)``: not UTF-8, not JSON, too deep, a
        number that is not finite.
    """
    text = _text(data, name, what)
    try:
        doc = json.loads(text, parse_constant=_not_a_number, parse_float=_finite_float)
        _check_tree(doc)
    except RecursionError:
        raise BlursynthError(f"{name}: unreadable {what} (nested deeper than {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # bad JSON (JSONDecodeError), a limit, an integer of more than 4300 digits
        raise BlursynthError(f"{name}: unreadable {what} ({exc})") from None
    return doc


def parse_toml(data: bytes, name: str, what: str) -> dict:
    """Parse TOML bytes with the limits above (``inf`` and ``nan`` refused).

    Raises
    ------
    BlursynthError
        ``NAME: not UTF-8 text ...``, ``NAME: not valid TOML (REASON)``, or a limit.
    """
    text = _text(data, name, what)
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        raise BlursynthError(f"{name}: not valid TOML (nested deeper than {MAX_DEPTH} levels)") from None
    except tomllib.TOMLDecodeError as exc:
        raise BlursynthError(f"{name}: not valid TOML ({exc})") from None
    try:
        _check_tree(doc)
    except ValueError as exc:
        raise BlursynthError(f"{name}: not a usable {what} ({exc})") from None
    return doc


def load_json(path: str | Path, what: str, *, name: str | None = None, missing: str | None = None) -> Any:
    """Read (:func:`blursynth.infiles.read_input`, the cap of ``what``) and parse a JSON file."""
    name = str(path) if name is None else name
    return parse_json(read_input(path, what, name=name, missing=missing), name, what)


def load_toml(path: str | Path, what: str, *, name: str | None = None, missing: str | None = None) -> dict:
    """Read (:func:`blursynth.infiles.read_input`, the cap of ``what``) and parse a TOML file."""
    name = str(path) if name is None else name
    return parse_toml(read_input(path, what, name=name, missing=missing), name, what)


# ------------------------------------------------------------------ schemas
class Opt:
    """A key of an object schema that may be missing: ``{"criteria": Opt(dict)}``."""

    def __init__(self, schema):
        self.schema = schema


class Map:
    """An object with any string keys (or those of ``keys``), each value of ``schema``."""

    def __init__(self, schema, keys: tuple[str, ...] | None = None):
        self.schema, self.keys = schema, keys


class Where:
    """``schema`` and a further test: ``Where(int, lambda v: v >= 0, "a non-negative integer")``."""

    def __init__(self, schema, test: Callable[[Any], bool], says: str):
        self.schema, self.test, self.says = schema, test, says


_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
          dict: "an object", list: "a list"}


def _says(schema) -> str:
    if isinstance(schema, Where):
        return schema.says
    if isinstance(schema, list):
        return f"a list of {_says(schema[0]).removeprefix('an ').removeprefix('a ')}s"
    if isinstance(schema, (dict, Map)):
        return "an object"
    return _NAMES[schema]


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fits(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # bool is an int in Python, never in a document
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def check_schema(value, schema, name: str, field: str = "") -> None:
    """Check ``value`` against ``schema``; types are exact.

    A schema is a type (``int``, ``float`` for any finite number, ``str``,
    ``bool``, ``dict``, ``list``), ``[schema]`` (a list of those), an object
    ``{key: schema or Opt(schema)}`` (other keys are allowed and left alone),
    :class:`Map` or :class:`Where`.

    Parameters
    ----------
    value : the parsed document (or part of it).
    schema : what it must be.
    name : how messages name the file.
    field : the path of ``value`` in the document, for messages.

    Raises
    ------
    BlursynthError
        ``NAME: FIELD must be KIND, not VALUE``.
    """
    where = field or "the document"

    def fail(says):
        raise BlursynthError(f"{name}: {where} must be {says}, not {_short(value)}")

    if isinstance(schema, Where):
        if isinstance(schema.schema, type) and not _fits(value, schema.schema):
            fail(schema.says)  # "a non-negative integer", not only "an integer"
        check_schema(value, schema.schema, name, field)
        if not schema.test(value):
            fail(schema.says)
    elif isinstance(schema, list):
        if not isinstance(value, list):
            fail(_says(schema))
        for i, item in enumerate(value):
            check_schema(item, schema[0], name, f"{field}[{i}]")
    elif isinstance(schema, Map):
        if not isinstance(value, dict):
            fail(_says(schema))
        for key, item in value.items():
            if schema.keys is not None and key not in schema.keys:
                raise BlursynthError(f"{name}: {field + '.' if field else ''}{_short(key)} is not one of "
                                     f"{', '.join(schema.keys)}")
            check_schema(item, schema.schema, name, f"{field}.{key}" if field else key)
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            fail("an object")
        for key, sub in schema.items():
            optional = isinstance(sub, Opt)
            if key not in value:
                if optional:
                    continue
                raise BlursynthError(f"{name}: {field + '.' if field else ''}{key!r} is missing")
            check_schema(value[key], sub.schema if optional else sub, name, f"{field}.{key}" if field else key)
    elif not _fits(value, schema):
        fail(_NAMES[schema])


NON_NEGATIVE = Where(int, lambda v: v >= 0, "a non-negative integer")


# ------------------------------------------------------------ dataset documents
def read_doc(path: str | Path, fmt: str, *, name: str, what: str, make: str, schema: dict | None = None,
             dataset: str | Path | None = None, fingerprint: str | None = None) -> dict:
    """Read the JSON document ``path`` of format ``fmt``; with ``dataset``, check it was made for it.

    Parameters
    ----------
    path : the file.
    fmt : the ``format`` tag it must carry, e.g. ``"blursynth-split/1"``.
    name : how messages name it, e.g. ``"--select sel.json"`` or the path itself.
    what : what it is, for messages and its size cap: ``"selection"``, ``"split file"``.
    make : the command that makes one, for messages: ``"blursynth filter"``.
    schema : what the document must hold besides ``format`` (:func:`check_schema`).
    dataset : the dataset folder it must have been made for (named in the message) ...
    fingerprint : ... whose fingerprint ``dataset_fingerprint`` must equal.

    Returns
    -------
    dict
        The document.

    Raises
    ------
    BlursynthError
        One line: missing, not a regular file, too large, unreadable (bad
        UTF-8, bad JSON, a limit), not an object of format ``fmt``, not of
        ``schema``, or made for another dataset.
    """
    doc = load_json(path, what, name=name, missing=f"{name}: no such {what} (make one with '{make}')")
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise BlursynthError(f"{name}: not a {what} (format {found!r:.60}, expected {fmt})")
    check_schema(doc, {"dataset_fingerprint": str, **(schema or {})}, name)
    if fingerprint is not None and doc["dataset_fingerprint"] != fingerprint:
        raise BlursynthError(f"{name}: the {what} was made for another dataset than {dataset}; "
                             f"make a new one with '{make}'")
    return doc
