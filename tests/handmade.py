"""Datasets written directly with :class:`blursynth.dataset.ShardWriter`, for tests that need
exact control of frames, sizes and meta (odd source ids, known motion, mixed frame sizes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blursynth.dataset import Manifest, Sample, ShardWriter, shard_name

HS_CONFIG = {"response": "gamma:2.2", "seq_len": 2}


def make_dataset(out: Path, shards: list[list[dict]], config: dict | None = None, kind: str = "highspeed") -> Path:
    """Write a complete dataset. Each sample dict has ``source`` and either ``arrays``
    (uint8 ``blur``/``sharp``[/``latent``]) or ``shape`` (L, H, W: random frames); it may
    carry ``repeat``, ``start``, ``T``, ``tau`` and ``meta`` (more fields)."""
    out.mkdir(parents=True)
    config = config or HS_CONFIG
    n = sum(len(s) for s in shards)
    manifest = Manifest(kind=kind, config=config, seed=0, n_samples=n,
                        shard_size=max(len(s) for s in shards), compression="none", complete=True)
    rng = np.random.default_rng(7)
    index = 0
    for k, specs in enumerate(shards):
        with ShardWriter(out / shard_name(k), kind=kind, config=config, fingerprint=manifest.fingerprint,
                         shard_index=k, capacity=len(specs)) as writer:
            for spec in specs:
                arrays = spec.get("arrays")
                if arrays is None:
                    L, h, w = spec["shape"]
                    arrays = {name: rng.integers(0, 256, (L, h, w, 3), dtype=np.uint8) for name in ("blur", "sharp")}
                meta = {"index": index, "source": spec["source"], "seed": index,
                        "repeat": spec.get("repeat", 0), "start": spec.get("start", 0), "T": spec.get("T", 7),
                        "tau": spec.get("tau", 7), **spec.get("meta", {})}
                writer.append(Sample(arrays, meta))
                index += 1
        manifest.shards.append({"index": k, "file": shard_name(k), "samples": len(specs), "sha256": writer.digest})
    manifest.save(out)
    return out
