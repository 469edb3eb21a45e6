"""Splits as the reference models use them.

The split file itself (by-source assignment, reading, writing) is
:mod:`blursynth.split`, which needs no torch; its names are re-exported here
for the training and evaluation code. This module adds the seeded draw of
samples across sources used to pick validation and evaluation samples.
"""

from __future__ import annotations

import numpy as np

from blursynth.split import (  # noqa: F401  (re-exported for the training and evaluation code)
    SPLIT_FILE, SPLIT_FORMAT, SPLITS, default_split_file, load_split, make_split, split_sources, split_sources_of,
)

__all__ = ["SPLIT_FILE", "SPLIT_FORMAT", "SPLITS", "default_split_file", "load_split", "make_split",
           "sample_across_sources", "split_sources", "split_sources_of"]


def sample_across_sources(refs: list, n: int | None, seed: int) -> list:
    """At most ``n`` of ``refs``, drawn with ``seed`` and spread across their sources.

    Sources are visited in a seeded order, round-robin, each giving one of its
    samples (in a seeded order) per round, so a small draw covers as many
    sources as it can instead of the first few sources in index order. The
    result is in index order. ``n=None`` or ``n >= len(refs)`` keeps all.
    """
    if n is None or n >= len(refs):
        return list(refs)
    rng = np.random.default_rng(seed)
    by_source: dict[str, list] = {}
    for ref in refs:
        by_source.setdefault(ref.source, []).append(ref)
    queues = []
    for source in [sorted(by_source)[i] for i in rng.permutation(len(by_source))]:
        members = by_source[source]
        queues.append([members[i] for i in rng.permutation(len(members))])
    picked = []
    while len(picked) < n:
        for queue in queues:
            if queue and len(picked) < n:
                picked.append(queue.pop())
    return sorted(picked, key=lambda r: r.index)
