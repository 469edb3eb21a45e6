"""Held-out samples as the reference models draw them, and the split file's names for them.

This module applies the seeded draw across sources
(:func:`blursynth.curate.split.draw_across_sources`) to sample references
(:func:`sample_across_sources`), to pick validation and evaluation samples
spread over the held-out sources. The split file itself (by-source assignment, reading, writing) is
:mod:`blursynth.curate.split`, which needs no torch; its names are re-exported here
for the training and evaluation code.
"""

from __future__ import annotations

from blursynth.curate.split import (  # noqa: F401  (re-exported for the training and evaluation code)
    SPLIT_FILE, SPLIT_FORMAT, SPLITS, default_split_file, load_split, make_split, split_sources, split_sources_of,
)
from blursynth.curate.split import draw_across_sources

__all__ = ["SPLIT_FILE", "SPLIT_FORMAT", "SPLITS", "default_split_file", "load_split", "make_split",
           "sample_across_sources", "split_sources", "split_sources_of"]


def sample_across_sources(refs: list, n: int | None, seed: int) -> list:
    """At most ``n`` of ``refs``, drawn with ``seed`` and spread across their sources.

    The draw is :func:`blursynth.curate.split.draw_across_sources` over the refs'
    ``source``; the result is in index order. ``n=None`` or ``n >= len(refs)``
    keeps all (and draws nothing).
    """
    if n is None or n >= len(refs):
        return list(refs)
    picked = draw_across_sources([ref.source for ref in refs], n, seed)
    return sorted((refs[i] for i in picked), key=lambda r: r.index)
