"""Seed machinery shared by every pipeline.

Sample ``i`` of a run with ``--seed s`` draws its randomness from
``numpy.random.SeedSequence(s, spawn_key=(i,))`` and from nothing else, so a
sample's content depends on (seed, i, config) only, never on which worker
renders it or in what order. Plan-time draws that belong to a source rather than
to a sample (the tau/T of a clip) use a stream keyed by a stable hash of the
source id, so adding a clip to ``--src`` does not change the draws of the others.
"""

from __future__ import annotations

import hashlib

import numpy as np

# First spawn-key word of per-source streams: keeps them apart from the
# per-sample keys (i,), whose single word is a sample index.
_SOURCE_STREAM_TAG = 0x5EED_50CE
# First spawn-key word of named sub-streams of a sample (realism draws).
_NAMED_STREAM_TAG = 0x5EED_4A3E


def sample_sequence(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(index,))


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index``."""
    return np.random.default_rng(sample_sequence(seed, index))


def sample_seed(seed: int, index: int) -> int:
    """A 63-bit integer identifying sample ``index``'s stream (stored in ``meta/seed``)."""
    return sequence_seed(sample_sequence(seed, index))


def sequence_seed(sequence: np.random.SeedSequence) -> int:
    """The 63-bit id of a stream (:func:`sample_seed` of the sequence built once)."""
    state = sequence.generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def _name_words(name: str) -> tuple[int, int]:
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return tuple(int.from_bytes(digest[k:k + 4], "little") for k in (0, 4))


def named_rng(sample_seed_value: int, name: str, *extra: int) -> np.random.Generator:
    """A named sub-stream of one sample, keyed by the sample's ``meta/seed``.

    Each optional effect (e.g. ``"realism.noise"``) draws from its own stream,
    so turning one on or off shifts no other draw of the sample.

    Parameters
    ----------
    sample_seed_value : int
        The sample's seed (:func:`sample_seed`, carried by its spec).
    name : str
        The stream's name.
    *extra : int
        Further key words (e.g. the exposure within a sequence).

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence(
        sample_seed_value, spawn_key=(_NAMED_STREAM_TAG, *_name_words(name), *extra)))


def source_rng(seed: int, source_id: str, *extra: int) -> np.random.Generator:
    """A generator for plan-time draws of one source (e.g. a clip's tau and T)."""
    words = _name_words(source_id)
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(_SOURCE_STREAM_TAG, *words, *extra))
    )
