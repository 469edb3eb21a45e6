"""What a pipeline config looks like in manifest.json and shard attributes."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from blursynth.realism import Realism
from blursynth.response import Response, parse_responses


class SourceConfig:
    """Mixin of the pipeline configs (frozen dataclasses with ``src``, ``response``, ``gamma``)."""

    @property
    def responses(self) -> tuple[Response, ...]:
        """The curves of ``--response`` (a comma list gives several renditions; the first makes ``blur``)."""
        return parse_responses(self.response, self.gamma)

    @property
    def response_name(self) -> str:
        """Canonical name of the (first) response curve, e.g. ``gamma:2.2``."""
        return self.responses[0].name

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
    ``response`` is the first curve; a list of curves (several renditions) is
    recorded in full as ``responses`` too, a key absent for a single curve, so
    single-curve configs (and their fingerprints) are as they always were.
    """
    d = json.loads(json.dumps(asdict(config)))
    d["src"] = [str(Path(s).resolve()) for s in config.src]
    responses = parse_responses(config.response, config.gamma)
    d["response"] = responses[0].name
    if len(responses) > 1:
        d["responses"] = [r.name for r in responses]
    del d["gamma"]
    return d
