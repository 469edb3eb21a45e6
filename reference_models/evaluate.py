"""Score a trained reference model on held-out data: PSNR and SSIM of its output
and of the blurry input, against the sharp frames, so that the gain is visible.

Every frame of every selected sample is scored as an 8-bit image (the output is
rounded and clipped to 0–255 first) and the figures are means over frames. A
video model runs over each whole sequence online, with the first and last
frames repeated so that every frame gets an output (see ``DTBNet.forward``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from blursynth.errors import BlursynthError
from blursynth.shards import atomic_write_bytes
from reference_models.metrics import psnr, ssim, to_uint8_range

EVAL_FORMAT = "blursynth-eval/1"


def _centre_crop(t: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None:
        return t
    h, w = t.shape[-2:]
    ch, cw = min(size, h), min(size, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return t[..., y:y + ch, x:x + cw]


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, dataset, device: str = "cpu", amp: str = "none",
                   crop: int | None = None, max_items: int | None = None, progress: bool = False) -> dict:
    """PSNR/SSIM of ``model``'s output and of the blurry input over ``dataset`` (no augmentation).

    Args:
        model: a registered reference model (its ``sample_kind`` picks the task).
        dataset: a dataset from :mod:`reference_models.data`, items without augmentation.
        device, amp: where and how to run (``amp='bf16'``: bf16 autocast).
        crop: score a centre crop of this size (``None``: whole frames).
        max_items: score at most this many items.

    Returns:
        ``{"n_items", "n_frames", "psnr": {"output", "input", "gain"},
        "ssim": {"output", "input", "gain"}, "per_item": [...]}``.
    """
    from reference_models.tasks import task_of
    from reference_models.train import autocast

    task = task_of(model)
    model.eval()
    n = len(dataset) if max_items is None else min(max_items, len(dataset))
    sums = {"psnr_output": 0.0, "psnr_input": 0.0, "ssim_output": 0.0, "ssim_input": 0.0}
    frames = 0
    per_item = []
    from tqdm.auto import tqdm
    for i in tqdm(range(n), desc="eval", unit="item", file=sys.stderr, disable=not progress):
        item = dataset[i]
        batch = {k: (_centre_crop(v, crop).unsqueeze(0).to(device) if torch.is_tensor(v) else v)
                 for k, v in item.items()}
        with autocast(device, amp):
            output, target, baseline = task.outputs(model, batch, False)
        out8, ref8, in8 = (to_uint8_range(t.float()).flatten(0, 1) for t in (output, target, baseline))
        scores = {"psnr_output": psnr(out8, ref8), "psnr_input": psnr(in8, ref8),
                  "ssim_output": ssim(out8, ref8), "ssim_input": ssim(in8, ref8)}
        # An exact match has infinite PSNR; cap at 100 dB so that means stay finite.
        scores = {k: v.clamp(max=100.0) for k, v in scores.items()}
        for k, v in scores.items():
            sums[k] += float(v.sum())
        frames += out8.shape[0]
        per_item.append({"index": int(item["index"]), "start": int(item.get("start", 0)),
                         **{k: float(v.mean()) for k, v in scores.items()}})
    if frames == 0:
        raise BlursynthError("nothing to evaluate (the selection is empty)")
    mean = {k: v / frames for k, v in sums.items()}
    return {
        "n_items": n, "n_frames": frames,
        "psnr": {"output": mean["psnr_output"], "input": mean["psnr_input"],
                 "gain": mean["psnr_output"] - mean["psnr_input"]},
        "ssim": {"output": mean["ssim_output"], "input": mean["ssim_input"],
                 "gain": mean["ssim_output"] - mean["ssim_input"]},
        "per_item": per_item,
    }


def evaluate(run: str | Path, data: str | Path, split: str = "test", split_file: str | Path | None = None,
             device: str = "auto", amp: str = "none", crop: int | None = None,
             max_samples: int | None = None, out: str | Path | None = None, progress: bool = True) -> dict:
    """Evaluate the run in ``run`` on split ``split`` of ``data`` and write the JSON report.

    ``split='all'`` scores every sample; otherwise the split file (default
    ``DATA/split.json``) names the sources of the split. The report goes to
    ``out`` (default ``RUN/eval-SPLIT.json``) and is returned.
    """
    from reference_models.data import ShardIndex
    from reference_models.split import default_split_file, load_split, split_sources_of
    from reference_models.tasks import task_of
    from reference_models.train import model_from_checkpoint, resolve_device

    run = Path(run)
    model, ckpt = model_from_checkpoint(run)
    device = resolve_device(device)
    model.to(device)
    index = ShardIndex(data)
    if split == "all":
        refs, split_path = index.select(None), None
    else:
        split_path = Path(split_file) if split_file is not None else default_split_file(data)
        doc = load_split(split_path, data)
        refs = index.select(split_sources_of(doc, split, split_path))
    if max_samples is not None:
        refs = refs[:max_samples]
    dataset = task_of(model).make_dataset(index, refs, model=model, clip_len=None, patch=None,
                                          augment=False, seed=0)
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
        "psnr": res["psnr"], "ssim": res["ssim"],
        "elapsed_s": round(time.monotonic() - t0, 3), "per_sample": res["per_item"],
    }
    base = run if run.is_dir() else run.parent
    out = Path(out) if out is not None else base / f"eval-{split}.json"
    atomic_write_bytes(out, (json.dumps(report, indent=1) + "\n").encode())
    report["out"] = str(out)
    return report
