"""Datasets written directly with :class:`blursynth.dataset.ShardWriter`, for tests that need
exact control of frames, sizes and meta (odd source ids, known motion, mixed frame sizes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blursynth.dataset import Manifest, Sample, ShardWriter, shard_name
from blursynth.run.engine import RunOptions, run

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


# The tiny dataset: smooth random textures (one per source) translated by an integer
# velocity per frame; the blurred frame is the mean of the texture at 2k+1 consecutive
# one-pixel steps along the motion, the sharp frame the middle step. A network can learn to undo it.
SIZE = 40

MARGIN = 24


@dataclass(frozen=True)
class TinySpec:
    index: int
    source: str
    seed: int
    seq_len: int
    latent: int

def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2
    coarse = rng.random((size // 4, size // 4, 3)).astype(np.float32)
    tex = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    fine = rng.random((size, size, 3)).astype(np.float32)
    return np.clip(0.7 * tex + 0.3 * fine, 0, 1)

def render_tiny(spec: TinySpec, worker=None) -> Sample:
    """Renderer for engine.run: texture of the source, motion and blur of the sample."""
    big = SIZE + 2 * MARGIN
    source_rng = np.random.default_rng([int(spec.source.split("-")[1])])
    tex = _texture(source_rng, big)
    rng = np.random.default_rng([spec.seed, spec.index])
    vy, vx = (int(v) for v in rng.integers(-2, 3, 2))
    if vy == vx == 0:
        vx = 2
    k = 2
    oy, ox = MARGIN - 2 * vy, MARGIN - 2 * vx

    def at(step):  # texture position after `step` one-pixel steps along the motion
        sy = oy + int(round(step * np.sign(vy) * abs(vy) / max(abs(vy), abs(vx))))
        sx = ox + int(round(step * np.sign(vx) * abs(vx) / max(abs(vy), abs(vx))))
        return tex[sy:sy + SIZE, sx:sx + SIZE]

    blur, sharp, latent = [], [], []
    steps_per_frame = max(abs(vy), abs(vx))
    for t in range(spec.seq_len):
        c = t * steps_per_frame
        sharp.append(at(c))
        blur.append(np.mean([at(c + s) for s in range(-k, k + 1)], axis=0))
        if spec.latent:
            latent.append([at(c + s) for s in np.linspace(-k, k, spec.latent).round().astype(int)])
    to8 = lambda a: (np.asarray(a) * 255).round().astype(np.uint8)  # noqa: E731
    arrays = {"blur": to8(blur), "sharp": to8(sharp)}
    if spec.latent:
        arrays["latent"] = to8(latent)
    return Sample(arrays, {"source": spec.source, "index": spec.index, "seed": spec.seed,
                           "vx": vx, "vy": vy})

def make_tiny_dataset(out: Path, n_sources: int = 6, per_source: int = 3, seq_len: int = 5,
                      latent: int = 0, seed: int = 0) -> Path:
    specs = [TinySpec(i, f"tex-{i // per_source}", seed, seq_len, latent)
             for i in range(n_sources * per_source)]
    config = {"tiny": True, "n_sources": n_sources, "per_source": per_source, "seq_len": seq_len,
              "latent": latent}
    run("highspeed", config, seed, specs, render_tiny,
        RunOptions(out=out, shard_size=8, workers=1, quiet=True))
    return out


def make_split_tiny_dataset(out: Path) -> Path:
    """:func:`make_tiny_dataset` (6 sources x 3 samples, runs of 5 frames, 40x40) with its split
    file: 20 % of the sources for validation and 20 % for test, seed 0."""
    from reference_models.heldout import make_split

    root = make_tiny_dataset(out)
    make_split(root, val=0.2, test=0.2, seed=0)
    return root
