"""What a pipeline config looks like in manifest.json and shard attributes."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from blursynth.realism import Realism
from blursynth.response import parse_response


class SourceConfig:
    """Mixin of the pipeline configs (frozen dataclasses with ``src``, ``response``, ``gamma``)."""

    @property
    def response_name(self) -> str:
        """Canonical response curve name, e.g. ``gamma:2.2``."""
        return parse_response(self.response, self.gamma).name

    @property
    def realism(self) -> Realism:
        """The run's :class:`~blursynth.realism.Realism` (fields ``noise_shot``, ``noise_read``,
        ``saturation``, ``jpeg``); validates them."""
        return Realism(self.noise_shot, self.noise_read, self.saturation, self.jpeg)

    def to_dict(self) -> dict:
        """The config as recorded in manifest.json (see :func:`resolved_config`)."""
        return resolved_config(self)


def resolved_config(config) -> dict:
    """The JSON form of a pipeline config dataclass (``src``, ``response``, ``gamma`` fields).

    Tuples become lists (as they come back from JSON, so a re-run compares equal),
    source paths become absolute, and ``gamma`` is folded into the canonical
    response name (``gamma:2.2``), so equivalent spellings give one identity.
    """
    d = json.loads(json.dumps(asdict(config)))
    d["src"] = [str(Path(s).resolve()) for s in config.src]
    d["response"] = parse_response(config.response, config.gamma).name
    del d["gamma"]
    return d
