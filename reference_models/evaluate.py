"""Score a trained reference model on held-out data: PSNR and SSIM of its output
and of the blurry input, against the same target, so that the gain is visible.

Scores are kept per scored *position* (the frames of a video sample, the K
latent frames of a latent sample, the one sharp frame of a pair), named by the
model's task (``t0``, ``t1``, … or, for blur2video, ``initial``, ``middle``,
``final``), and as means over every scored frame. Every frame is scored as an
8-bit image (the output is rounded and clipped to 0–255 first). The task's
:meth:`~reference_models.task.ModelTask.align` reorders the output per sample
first (blur2video: the better of the true and the reversed order).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from blursynth.curate.selection import Selection, filter_refs, load_selection
from blursynth.errors import BlursynthError
from blursynth.dataset.outdir import OutputMarker, check_output_file, json_bytes, write_output
from reference_models.checkpoint import model_from_checkpoint
from reference_models.data import ShardIndex, to_float
from reference_models.metrics import SSIM_WINDOW, psnr, ssim, to_uint8_range
from reference_models.runtime import autocast, resolve_device
from reference_models.heldout import (
    default_split_file, load_split, sample_across_sources, split_sources_of,
)
from reference_models.task import task_of

__all__ = ["EVAL_FORMAT", "evaluate", "evaluate_model", "format_table"]

EVAL_FORMAT = "blursynth-eval/2"
# What ``eval-reference`` writes, and how it knows a report it wrote (blursynth.dataset.outdir).
EVAL_OUT = OutputMarker.json("blursynth eval-reference", EVAL_FORMAT)
_KEYS = ("psnr_output", "psnr_input", "ssim_output", "ssim_input")


def _centre_crop(t: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None:
        return t
    h, w = t.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return t[..., y:y + ch, x:x + cw]


def _summary(sums: dict, frames: int) -> dict:
    mean = {k: sums[k] / frames for k in _KEYS}
    return {"psnr": {"output": mean["psnr_output"], "input": mean["psnr_input"],
                     "gain": mean["psnr_output"] - mean["psnr_input"]},
            "ssim": {"output": mean["ssim_output"], "input": mean["ssim_input"],
                     "gain": mean["ssim_output"] - mean["ssim_input"]},
            "n_frames": frames}


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, dataset, device: str = "cpu", amp: str = "none",
                   crop: int | None = None, max_items: int | None = None, progress: bool = False) -> dict:
    """PSNR/SSIM of ``model``'s output and of the blurry input over ``dataset``, per position.

    Parameters
    ----------
    model : torch.nn.Module
        A registered reference model (its task says what to run and score).
    dataset : torch.utils.data.Dataset
        Items without augmentation, from the model's ``task.dataset``.
    device, amp : str
        Where and how to run (``amp='bf16'``: bf16 autocast).
    crop : int or None
        Score a centre crop of this size (``None``: whole frames).
    max_items : int or None
        Score at most this many items (the first ones).
    progress : bool
        Show a progress bar.
    select : str, Path or Selection, optional
        A selection (``blursynth filter``): score only its samples of the split.

    Returns
    -------
    dict
        ``{"n_items", "n_frames", "psnr": {"output", "input", "gain"}, "ssim": {…},
        "positions": {name: {"psnr": {…}, "ssim": {…}, "n_frames"}}, "per_item": [...]}``.
    """
    task = task_of(model)
    model.eval()
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    sums = dict.fromkeys(_KEYS, 0.0)
    per_position: dict[int, dict] = {}
    frames = 0
    per_item = []
    width = 0
    from tqdm.auto import tqdm
    online = task.inference == "online" and hasattr(dataset, "run_frames")
    scored = (_online_outputs(task, model, dataset, n, device, amp, crop) if online
              else _window_outputs(task, model, dataset, n, device, amp, crop))
    for item, (output, target, baseline) in tqdm(scored, total=n, desc="eval", unit="item", file=sys.stderr,
                                                 disable=not progress):
        output = task.align(output.float(), target.float())
        out8, ref8, in8 = (to_uint8_range(t.float()).flatten(0, 1) for t in (output, target, baseline))
        scores = {"psnr_output": psnr(out8, ref8), "psnr_input": psnr(in8, ref8),
                  "ssim_output": ssim(out8, ref8), "ssim_input": ssim(in8, ref8)}
        # An exact match has infinite PSNR; cap at 100 dB so that means stay finite.
        scores = {k: v.clamp(max=100.0) for k, v in scores.items()}
        positions = output.shape[1]
        width = max(width, positions)
        for k, v in scores.items():
            sums[k] += float(v.sum())
            for p, value in enumerate(v.view(-1, positions).sum(0).tolist()):
                acc = per_position.setdefault(p, {**dict.fromkeys(_KEYS, 0.0), "frames": 0})
                acc[k] += value
        for p in range(positions):
            per_position[p]["frames"] += output.shape[0]
        frames += out8.shape[0]
        per_item.append({"index": int(item["index"]), "start": int(item.get("start", 0)),
                         **{k: float(v.mean()) for k, v in scores.items()}})
    if frames == 0:
        raise BlursynthError("nothing to evaluate (the selection is empty)")
    names = task.position_names(width)
    return {"n_items": n, **_summary(sums, frames),
            "positions": {names[p]: _summary(acc, acc["frames"]) for p, acc in sorted(per_position.items())},
            "per_item": per_item}


def _window_outputs(task, model, dataset, n: int, device: str, amp: str, crop: int | None):
    """(item, (output, target, blurry input)) of the first ``n`` items, each run on its own."""
    for i in range(n):
        item = dataset[i]
        batch = {k: (_centre_crop(v, crop).unsqueeze(0).to(device) if torch.is_tensor(v) and v.ndim >= 3
                     else torch.as_tensor(v).unsqueeze(0)) for k, v in item.items()}
        with autocast(device, amp):
            yield item, task.outputs(model, batch)


# Frames read and stepped at once while an online model runs through frames nobody scores.
_ONLINE_CHUNK = 32


def _online_outputs(task, model, dataset, n: int, device: str, amp: str, crop: int | None):
    """(item, (output, target, blurry input)) of the first ``n`` items, the model run online.

    The items are visited in the order of their runs and of their place in the
    run; the model's state carries from the run's first frame, through frames of
    samples that are not scored (stepped in chunks of :data:`_ONLINE_CHUNK`), to
    the last scored sample, so every run is stepped once whatever the number of
    its samples scored. The run's first and last frames are repeated m times at
    its ends, as ``pad=True`` does for a whole video.
    """
    m = task.context(model)
    order = sorted(range(n), key=lambda i: (dataset.refs[i].run, dataset.refs[i].offset))
    run, done, state = None, 0, None
    for i in order:
        ref = dataset.refs[i]
        if ref.run != run:
            run, done, state = ref.run, 0, None
        start, stop = ref.offset, ref.offset + dataset.index.seq_len
        while done < stop:
            upto = min(done + _ONLINE_CHUNK, start) if done < start else stop
            w = dataset.run_frames(i, done - m, upto + m)
            blur = _centre_crop(w["blur"], crop).unsqueeze(0).to(device)
            left, right = m - (done - w["a"]), m - (w["b"] - upto)
            clip = torch.cat([blur[:, :1]] * left + [blur] + [blur[:, -1:]] * right, 1)
            with autocast(device, amp):
                out, state = model(to_float(clip), state=state, return_state=True)
            if done >= start:  # the sample's own frames
                own = slice(done - w["a"], upto - w["a"])
                sharp = _centre_crop(w["sharp"], crop).unsqueeze(0).to(device)
                yield ({"index": ref.index, "start": 0},
                       (out, to_float(sharp[:, own]), to_float(blur[:, own])))
            done = upto


def format_table(report: dict) -> str:
    """The per-position table of a report, as printed by ``eval-reference``."""
    rows = [("position", "frames", "PSNR out", "PSNR in", "gain", "SSIM out", "SSIM in")]
    for name, r in [*report["positions"].items(), ("mean", report)]:
        rows.append((name, str(r["n_frames"]), f"{r['psnr']['output']:.2f}", f"{r['psnr']['input']:.2f}",
                     f"{r['psnr']['gain']:+.2f}", f"{r['ssim']['output']:.4f}", f"{r['ssim']['input']:.4f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
                     for row in rows)


def _selection(ckpt: dict, run: Path, data, split: str, split_file, index: ShardIndex):
    """Samples to score and the split file used; refuses sources the run trained on."""
    # A run of a one-source dataset trains on all of it (train.py: no split to make).
    unsplit = not ckpt["config"].get("split_file")
    same_data = ckpt.get("dataset_fingerprint") == index.manifest.fingerprint
    if unsplit and same_data and split != "all" and split_file is None:
        raise BlursynthError(
            f"--split {split}: the run in {run} was trained without a split, on all of {data}, so none of it "
            f"is held out; score the run on data from other sources: eval-reference {run} --data OTHER "
            "--split all")
    if split == "all":
        refs, split_path = index.select(None), None
    else:
        if split_file is not None:
            split_path = Path(split_file)
        elif ckpt["config"].get("split_file") and Path(ckpt["config"]["split_file"]).exists():
            split_path = Path(ckpt["config"]["split_file"])  # the split the run trained with
        else:
            split_path = default_split_file(data)
        doc = load_split(split_path, data)
        refs = index.select(split_sources_of(doc, split, split_path))
    trained = set(ckpt.get("train_sources") or [])
    if trained and ckpt.get("dataset_fingerprint") == index.manifest.fingerprint:
        leaked = sorted({r.source for r in refs} & trained)
        if leaked:
            where = "--split all" if split_path is None else f"--split {split} of {split_path}"
            raise BlursynthError(
                f"{where}: {len(leaked)} of its sources ({', '.join(leaked[:3])}"
                f"{', …' if len(leaked) > 3 else ''}) are sources the run in {run} trained on; scoring "
                "them measures memorization (" + ("the run was trained without a split: score it on data "
                                                 "from other sources, --data OTHER --split all" if unsplit else
                                                 "use the run's own split, or a split made before training") + ")")
    return refs, split_path


def evaluate(run: str | Path, data: str | Path, split: str = "test", split_file: str | Path | None = None,
             device: str = "auto", amp: str = "none", crop: int | None = None,
             max_samples: int | None = None, seed: int = 0, out: str | Path | None = None,
             progress: bool = True, select: str | Path | Selection | None = None, overwrite: bool = False) -> dict:
    """Evaluate the run in ``run`` on split ``split`` of ``data`` and write the JSON report.

    Parameters
    ----------
    run : str or Path
        Run folder (or checkpoint file).
    data : str or Path
        Dataset folder.
    split : str
        ``train``, ``val``, ``test`` or ``all``.
    split_file : str or Path or None
        Default: the split the run trained with, else ``DATA/split.json``.
    device, amp : str
        Where and how to run.
    crop : int or None
        Score a centre crop of this size.
    max_samples : int or None
        Score at most this many samples, a seeded draw across sources.
    seed : int
        Seed of that draw.
    out : str or Path or None
        Report file (default ``RUN/eval-SPLIT.json``).
    progress : bool
        Show a progress bar.
    select : str, Path or Selection, optional
        A selection (``blursynth filter``): score only its samples of the split.
    overwrite : bool
        Replace an existing ``out`` that is not an evaluation report (a
        dataset's own file never: see :func:`blursynth.dataset.outdir.check_output_file`).

    Returns
    -------
    dict
        The report (also written to ``out``), with ``out`` added.

    Raises
    ------
    BlursynthError
        For a bad option, a missing split, or a split holding sources the run trained on.
    """
    if crop is not None and crop < SSIM_WINDOW:
        raise BlursynthError(f"--crop {crop}: must be at least {SSIM_WINDOW} pixels "
                             f"(SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window)")
    if max_samples is not None and max_samples < 1:
        raise BlursynthError(f"--max-samples {max_samples}: must be at least 1")
    run = Path(run)
    base = run if run.is_dir() else run.parent
    out = Path(out) if out is not None else base / f"eval-{split}.json"
    check_output_file(out, EVAL_OUT, overwrite=overwrite)  # before the model runs
    model, ckpt = model_from_checkpoint(run)
    device = resolve_device(device)
    model.to(device)
    index = ShardIndex(data)
    refs, split_path = _selection(ckpt, run, data, split, split_file, index)
    if select is not None:
        chosen = select if isinstance(select, Selection) else load_selection(select, data)
        if chosen.fingerprint != index.manifest.fingerprint:
            raise BlursynthError(f"--select: the selection was made for another dataset than {data}")
        refs = filter_refs(refs, chosen, f"--select (split {split})")
    refs = sample_across_sources(refs, max_samples, seed)
    dataset = task_of(model).dataset(index, refs, model=model, clip_len=None, patch=None, augment=False,
                                     flip=False, seed=0)
    t0 = time.monotonic()
    res = evaluate_model(model, dataset, device=device, amp=amp, crop=crop, progress=progress)
    sources = {r.index: r.source for r in refs}
    for item in res["per_item"]:
        item["source"] = sources[item["index"]]
    report = {
        "format": EVAL_FORMAT, "model": ckpt["model"], "model_args": ckpt["model_args"],
        "run": str(run), "step": int(ckpt["step"]), "data": str(data),
        "dataset_fingerprint": index.manifest.fingerprint, "split": split,
        "split_file": None if split_path is None else str(split_path),
        "n_samples": len(refs), "n_frames": res["n_frames"], "crop": crop, "device": device, "amp": amp,
        "psnr": res["psnr"], "ssim": res["ssim"], "positions": res["positions"],
        "elapsed_s": round(time.monotonic() - t0, 3), "per_sample": res["per_item"],
    }
    write_output(out, json_bytes(report), EVAL_OUT, overwrite=overwrite)
    report["out"] = str(out)
    return report
