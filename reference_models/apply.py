"""Apply a trained reference model to footage: frames, an image or a video -> PNG frames.

``blursynth deblur INPUT --run RUN --out OUT`` in four steps:

* **source** (:func:`reference_models.footage.open_footage`): a folder of
  frames, one image, or a video, every frame's size read from its header
  before anything runs.
* **plan** (:func:`output_names`): the PNG names, from the input stems
  (``frame_000000`` … for a video); an image model with K > 1 outputs per
  input (:meth:`~reference_models.task.ModelTask.outputs_per_input`) writes
  ``STEM_k0.png`` … ``STEM_k{K-1}.png``, ``STEM_k{K//2}`` being the sharp
  middle frame.
* **render** (:func:`deblur_frames`): the model as its task says it runs
  (:attr:`~reference_models.task.ModelTask.inference`), as its own evaluation
  runs it (:mod:`reference_models.evaluate`): an ``online`` model (DTB, Kim et
  al. 2017 Sec. 4) with its recurrent state carried over the whole sequence; a
  ``window`` model (FSTA) on the 2m+1 frames around each frame; both with the
  first and last frame repeated m times at the ends of the sequence (m: the
  task's :meth:`~reference_models.task.ModelTask.context`). An ``image`` model
  (Blur2Video) runs on each frame alone.
* **write** (:func:`deblur`): every PNG is written under a temporary name in a
  staging folder inside OUT and renamed into OUT only when every frame is
  done, with ``deblur.json`` recording the inputs and the run; a failed run
  leaves OUT as it was. OUT must be empty, or hold the output of an earlier
  ``deblur`` of the same inputs (which is replaced).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from blursynth.atomic import TMP_MARK, atomic_write_bytes, final_name, fsync_dir, publish
from blursynth.dataset.outdir import entries, output_folder
from blursynth.errors import BlursynthError
from blursynth.jsondoc import load_json
from blursynth.png import encode_png
from blursynth.sources.headers import FRAME_PIXELS
from reference_models.checkpoint import CHECKPOINT, WEIGHTS, model_from_checkpoint
from reference_models.footage import Footage, open_footage
from reference_models.metrics import to_uint8_range
from reference_models.runtime import autocast, resolve_device
from reference_models.task import task_of

__all__ = ["DEBLUR_FORMAT", "MARKER", "deblur", "deblur_frames", "output_names"]

DEBLUR_FORMAT = "blursynth-deblur/1"
MARKER = "deblur.json"
STAGING = f".deblur{TMP_MARK}"
# Frames per call of a video model: outputs of neighbouring frames share their per-frame
# encoder work; 2m context frames are decoded again per chunk.
CHUNK = 4


def output_names(stems, k: int) -> list[list[str]]:
    """The PNG names of each frame: ``[STEM.png]``, or ``STEM_k0.png`` … for K > 1 frames per input."""
    if k == 1:
        return [[f"{stem}.png"] for stem in stems]
    return [[f"{stem}_k{i}.png" for i in range(k)] for stem in stems]


def _to_tensor(rgb: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1).to(device).float().div_(255.0)


@torch.no_grad()
def deblur_frames(model: torch.nn.Module, frames: Iterator[np.ndarray], n_frames: int, device: str = "cpu",
                  amp: str = "none") -> Iterator[torch.Tensor]:
    """Run ``model`` over a sequence of frames, as its task says it runs at inference.

    Parameters
    ----------
    model : torch.nn.Module
        A registered reference model, on ``device``, in eval mode.
    frames : iterator of ndarray
        uint8 RGB ``[H, W, 3]`` frames, all of one size.
    n_frames : int
        How many ``frames`` yields.
    device, amp : str
        Where and how to run (``amp='bf16'``: bf16 autocast).

    Yields
    ------
    torch.Tensor
        Per input frame, in order, float32 on the CPU, not clipped: ``[3, H, W]``
        (video models, and image models with one output per input) or
        ``[K, 3, H, W]`` (image models with K outputs per input).

    Notes
    -----
    Video models see the first and last frame repeated m times beyond the ends
    of the sequence (m: the task's :meth:`~reference_models.task.ModelTask.context`,
    as their ``pad=True``), and run on chunks of :data:`CHUNK` frames with m
    frames of context on each side. An ``online`` model carries its state from
    chunk to chunk (``state=``, ``return_state=True``), so every frame n is
    deblurred from frames n−m..n+m with the state of frame n−1 over the whole
    sequence (Kim et al. 2017, Sec. 4); a ``window`` model's outputs each depend
    only on their own window, so either way this equals one call on the whole
    padded sequence. An ``image`` model runs on each frame alone.
    """
    task = task_of(model)
    if task.inference == "image":
        for rgb in frames:
            with autocast(device, amp):
                out = model(_to_tensor(rgb, device)[None])
            yield out[0].float().cpu()
        return
    m = task.context(model)
    online = task.inference == "online"
    cache: dict[int, torch.Tensor] = {}
    source = iter(frames)
    read = 0

    def frame(i: int) -> torch.Tensor:
        nonlocal read
        i = min(max(i, 0), n_frames - 1)
        while read <= i:
            cache[read] = _to_tensor(next(source), device)
            read += 1
        return cache[i]

    state = None
    for a in range(0, n_frames, CHUNK):
        b = min(a + CHUNK, n_frames)
        clip = torch.stack([frame(i) for i in range(a - m, b + m)])[None]
        with autocast(device, amp):
            if online:
                out, state = model(clip, state=state, return_state=True)
            else:
                out = model(clip)
        for i in [i for i in cache if i < b - m]:  # frames no later chunk reads
            del cache[i]
        for i in range(b - a):
            yield out[0, i].float().cpu()


def _png(image: torch.Tensor) -> bytes:
    """A ``[3, H, W]`` 0–1 image as 8-bit PNG bytes (rounded and clipped as evaluation scores it)."""
    return encode_png(to_uint8_range(image).to(torch.uint8).permute(1, 2, 0).numpy())


def _load_run(run: Path) -> tuple[torch.nn.Module, dict]:
    if not run.exists():
        raise BlursynthError(f"--run {run}: no such folder or file")
    if run.is_dir() and not (run / CHECKPOINT).exists() and not (run / WEIGHTS).exists():
        raise BlursynthError(f"--run {run}: no {CHECKPOINT} or {WEIGHTS} in this folder "
                             "(train one with 'blursynth train-reference')")
    return model_from_checkpoint(run)


def _previous(out: Path) -> dict | None:
    try:
        doc = load_json(out / MARKER, "deblur record")  # a FIFO planted in OUT must not hang
    except BlursynthError:
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == DEBLUR_FORMAT else None


def _leftover(name: str) -> bool:
    """What a killed run left: its staging folder ``.deblur.tmp-PID``, a half-written
    ``deblur.json.tmp-PID`` (exactly these names, :func:`blursynth.atomic.final_name`)."""
    return final_name(name) in (STAGING[:-len(TMP_MARK)], MARKER)


def _check_out(out: Path, footage: Footage) -> list[str]:
    """Refuse an OUT that holds anything but an earlier deblur of the same inputs; its outputs."""
    if out.exists() and not out.is_dir():
        raise BlursynthError(f"--out {out}: is a file, not a folder")
    present = entries(out) if out.is_dir() else []
    # What a killed run left: its staging folder, a half-written deblur.json (removed in deblur()).
    present = [name for name in present if not _leftover(name)]
    if not present:
        return []
    doc = _previous(out)
    same = (doc is not None and doc.get("input") == str(footage.path.resolve())
            and doc.get("files") == list(footage.files))
    ours = set(doc.get("outputs", [])) | {MARKER} if same else set()
    if not same or any(name not in ours for name in present):
        raise BlursynthError(f"--out {out}: not empty and not an earlier 'deblur' output of these inputs "
                             "(choose an empty or new folder)")
    return list(doc["outputs"])


def deblur(input: str | Path, run: str | Path, out: str | Path, device: str = "auto", amp: str = "none",
           progress: bool = True, max_pixels: int = FRAME_PIXELS) -> dict:
    """Deblur a folder of frames, an image or a video with the model of a training run.

    Parameters
    ----------
    input : str or Path
        Frames folder, image or video (:func:`open_footage`).
    run : str or Path
        A run folder of ``blursynth train-reference`` (its ``checkpoint.pt``,
        else ``model.pt``) or a checkpoint file.
    out : str or Path
        Folder for the PNG frames (made if missing).
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    amp : str
        ``none`` or ``bf16`` (bf16 autocast).
    progress : bool
        Show a progress bar on stderr.
    max_pixels : int
        The most pixels an input frame may declare (:func:`open_footage`).

    Returns
    -------
    dict
        The record also written to ``OUT/deblur.json``: ``format``, ``input``,
        ``files``, ``run``, ``model``, ``model_args``, ``step``, ``device``,
        ``amp``, ``frames_per_input`` (K), ``n_frames``, ``outputs``; plus
        ``out``.

    Raises
    ------
    BlursynthError
        A bad option, INPUT, run or OUT (see :func:`open_footage`), or a frame
        that does not decode; OUT is then left as it was.
    """
    if amp not in ("none", "bf16"):
        raise BlursynthError(f"--amp {amp}: expected none or bf16")
    device = resolve_device(device)
    run, out = Path(run), Path(out)
    footage = open_footage(input, max_pixels)
    old_outputs = _check_out(out, footage)
    model, ckpt = _load_run(run)
    model.to(device)
    k = task_of(model).outputs_per_input(model)
    names = output_names(footage.stems, k)
    # OUT is locked from here to the end (blursynth.dataset.outdir); a folder made here and left
    # empty by an error is removed.
    with output_folder(out) as made_out:
        old_outputs = _check_out(out, footage)  # again, under the lock
        for stale in [p for p in out.iterdir() if _leftover(p.name)]:
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale)
            else:
                stale.unlink()
        staging = out / f"{STAGING}{os.getpid()}"
        from tqdm.auto import tqdm
        try:
            staging.mkdir()
            outputs = deblur_frames(model, footage.frames(), footage.n_frames, device=device, amp=amp)
            bar = tqdm(total=footage.n_frames, desc="deblur", unit="frame", file=sys.stderr, disable=not progress)
            with bar:
                for frame_names, result in zip(names, outputs):
                    images = result if result.ndim == 4 else result[None]
                    for name, image in zip(frame_names, images):
                        atomic_write_bytes(staging / name, _png(image))
                    bar.update(1)
            flat = [name for frame_names in names for name in frame_names]
            for name in flat:
                publish(staging / name, out / name)
            for name in set(old_outputs) - set(flat):
                (out / name).unlink(missing_ok=True)
            record = {"format": DEBLUR_FORMAT, "input": str(footage.path.resolve()), "files": list(footage.files),
                      "run": str(run.resolve()), "model": ckpt["model"], "model_args": ckpt["model_args"],
                      "step": int(ckpt["step"]), "device": device, "amp": amp, "frames_per_input": k,
                      "n_frames": footage.n_frames, "outputs": flat}
            atomic_write_bytes(out / MARKER, (json.dumps(record, indent=1) + "\n").encode())
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if made_out:
                shutil.rmtree(out, ignore_errors=True)
            raise
        staging.rmdir()
        fsync_dir(out)
        return {**record, "out": str(out)}
