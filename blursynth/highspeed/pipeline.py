"""The ``highspeed`` command as a library call: discover, check, plan, then run the engine."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import blursynth.budget as budget
from blursynth.dataset import Manifest
from blursynth.errors import BadSourceError, BlursynthError, note
from blursynth.highspeed.config import (DEFAULT_FPS, KIND, LOW_FPS, READAHEAD, HighspeedConfig, clip_fps,
                                        output_size)
from blursynth.highspeed.plan import least_samples, most_samples, plan
from blursynth.highspeed.render import render
from blursynth.run.engine import RunOptions, default_out, run
from blursynth.sources.clips import Clip, discover


def check_budget(config: HighspeedConfig, clips: list[Clip], out) -> str:
    """Refuse at once, with the estimate, what cannot work (before planning).

    In time linear in the number of clips: one sample larger than this
    machine's memory, a plan of more than
    :data:`blursynth.budget.MAX_PLANNED_SAMPLES` samples, or a dataset larger
    than the free space of ``out`` (its smallest possible size). Returns that
    size and the free space as one line (said before the first sample).

    Raises
    ------
    BlursynthError
        Naming the options and the estimate.
    """
    L, K, R = config.seq_len, config.latent, len(config.responses)
    memory, most, least, disk = 0, 0, 0, 0
    for clip in clips:
        w, h = output_size(config.resize, clip.size) or clip.size
        sw, sh = clip.size
        # the uint8 sample, tau + read-ahead decoded frames, float32 averaging buffers
        memory = max(memory, budget.frame_bytes(L, K, h, w, R) + (max(config.tau) + READAHEAD) * sw * sh * 3
                     + 3 * sw * sh * 3 * 4)
        most += most_samples(config, clip)
        least += least_samples(config, clip)
        disk += least_samples(config, clip) * (budget.frame_bytes(L, K, h, w, R) + budget.SAMPLE_OVERHEAD)
    size = ("--resize " + "x".join("" if v is None else str(v) for v in config.resize) if config.resize
            else "source-size frames")
    budget.check_sample_memory(memory, f"--seq-len {L}, --latent {K}, {size}")
    budget.check_plan_size(most * config.repeats, f"--repeats {config.repeats} over {len(clips)} clip(s)")
    fewest = budget.count(least * config.repeats, "sample")
    return budget.check_disk(out, disk * config.repeats, f"at least {fewest}")


def _assumed_rate(config: HighspeedConfig, clips: list[Clip]) -> list[str]:
    """The line that says 240 fps is assumed for clips that carry no frame rate (frame
    folders), or none; said with the folder written to, as defaults are."""
    assumed = [c for c in clips if config.fps is None and c.fps is None]
    if not assumed:
        return []
    if len(assumed) == 1:
        who = f"{assumed[0].id} has"
    elif len(assumed) == len(clips):
        who = f"the {len(clips)} clips have"
    else:
        who = f"{len(assumed)} of {len(clips)} clips (e.g. {assumed[0].id}) have"
    return [f"note: {who} no recorded frame rate (frame folders carry none); {DEFAULT_FPS:g} fps is assumed "
            "and recorded in each sample; --fps sets it"]


def _notes(config: HighspeedConfig, clips: list[Clip]) -> None:
    """One line each: a --resize that changes aspect ratios, sources below 120 fps."""
    if config.resize is not None and None not in config.resize:
        changed = [c for c in clips if abs(config.resize[0] * c.size[1] - config.resize[1] * c.size[0])
                   > 0.01 * c.size[0] * config.resize[1]]
        if changed:
            c, (w, h) = changed[0], config.resize
            note(f"note: --resize {w}x{h} changes the aspect ratio of {len(changed)} of {len(clips)} clips "
                 f"(e.g. {c.id}: {c.size[0]}x{c.size[1]}); --resize {w}x or x{h} keeps it")
    slow = [c for c in clips if clip_fps(config, c) < LOW_FPS]
    if slow:
        c = slow[0]
        note(f"warning: {len(slow)} of {len(clips)} clips are below {LOW_FPS:g} fps (e.g. {c.id}: "
             f"{clip_fps(config, c):g} fps); averaging frames that far apart ghosts instead of blurring "
             "(GoPro and Kim et al. 2017 used 240 fps)")


def synthesize(config: HighspeedConfig, options: RunOptions) -> Manifest:
    """Discover, plan, render and write a whole dataset (the ``highspeed`` command).

    When none of ``config.src`` exists and ``options.out`` is None (the typed
    try-out), the built-in sample clip is used
    instead, announced as a :class:`~blursynth.errors.BlursynthWarning` and
    recorded as ``src_fallback`` in the manifest's config
    (:func:`sample_fallback`).

    Parameters
    ----------
    config : HighspeedConfig
        What to make.
    options : RunOptions
        Where and how to run.

    Returns
    -------
    Manifest

    Raises
    ------
    BlursynthError
        No usable clip, or some but not all ``--src`` entries missing.
    """
    sources, fallback = sample_fallback(config.src, try_out=options.out is None)
    if fallback:
        note(fallback["note"])
    clips, skipped = discover(sources, skip_bad=options.skip_bad, max_pixels=options.max_pixels)
    clips = [clip.planned() for clip in clips]  # absolute paths, and the stamps of the files
    estimate = check_budget(config, clips, options.out or default_out(KIND))
    try:
        specs, too_short = plan(config, clips, skip_bad=options.skip_bad)
    except BadSourceError as exc:
        raise BlursynthError(str(exc)) from None
    skipped += too_short
    if not specs:
        first = f" (e.g. {skipped[0]['source']}: {skipped[0]['reason']})" if skipped else ""
        raise BlursynthError(f"--src: no usable clip, every clip was skipped{first}")
    _notes(config, clips)
    recorded = config.to_dict()
    if fallback:
        recorded["src_fallback"] = fallback
    # Both counts of every video: what its header claims and what decodes (the plan's).
    videos = [{"source": c.id, "header_frames": c.header_frames, "decoded_frames": c.n_frames}
              for c in clips if c.stored_as == "video"]
    return run(KIND, recorded, config.seed, specs, render, options, skipped=skipped, sources=videos,
               announce=[estimate, *_assumed_rate(config, clips)])


def sample_fallback(sources: Iterable[str | Path], try_out: bool = True) -> tuple[tuple[str, ...], dict | None]:
    """The ``--src`` entries to read, falling back to the built-in clip when none exists.

    When *none* of ``sources`` exists (e.g. ``--src gopro/`` typed in an empty
    folder) and the run is a try-out (``try_out``: the typed command without
    ``--out``, writing to ``./highspeed-out``), the built-in synthetic 240 fps
    clip (:func:`blursynth.synthetic.cached_sample_clip`) is used instead, so
    the advertised command runs as typed. Otherwise a missing entry is an
    error: with some entries present, or with an ``--out`` chosen, it is a
    typo, and a typo must never make a synthetic dataset with exit 0.

    Returns
    -------
    sources : tuple of str
        What to read.
    fallback : dict or None
        ``{"missing": [...], "clip": path, "note": one line}`` when the built-in
        clip replaced ``sources`` (recorded in the manifest), else None.
    """
    sources = tuple(str(s) for s in sources)
    if not sources:
        raise BlursynthError("--src: no source given")
    missing = [s for s in sources if not Path(s).exists()]
    if not missing:
        return sources, None
    if len(missing) < len(sources):
        raise BlursynthError(f"--src {missing[0]}: no such file or folder")
    if not try_out:
        raise BlursynthError(f"--src {missing[0]}: no such file or folder (the built-in sample clip stands in "
                             "only for a try-out without --out; 'blursynth sample DIR' writes it)")
    from blursynth.synthetic import cached_sample_clip

    clip = cached_sample_clip()
    names = " ".join(missing)
    verb = "does" if len(missing) == 1 else "do"
    line = (f"note: {names} {verb} not exist; using the built-in 240 fps sample clip "
            f"(blursynth sample) - point --src at your footage")
    return (str(clip),), {"missing": missing, "clip": str(clip), "note": line}
