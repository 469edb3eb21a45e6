"""The Python API: what the commands do, as functions with keyword arguments.

``import blursynth`` stays light: these names are loaded on first use
(``blursynth.__getattr__``). Every function here is a thin layer over the
library; the commands call the same code.

* :func:`make_highspeed` and :func:`make_panorama` make a dataset, as the
  commands do (not ``blursynth.highspeed``/``blursynth.panorama``: those names
  are the pipeline modules);
* :func:`open_dataset` reads one back as numpy arrays
  (:class:`blursynth.dataset.Dataset`), usable directly as a map-style dataset
  of a torch ``DataLoader``; :func:`torch_dataset` gives float CHW tensors;
* :func:`blur` applies Eq. 1 of Kim et al. 2017 to frames held in memory;
* :func:`sample_clip` writes the built-in synthetic 240 fps clip (the
  ``sample`` command);
* :func:`deblur` applies a trained reference model to footage (the ``deblur``
  command; torch is imported on first use).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from blursynth.dataset import Dataset, open_dataset
from blursynth.run.options import RunOptions
from blursynth.errors import BlursynthError
from blursynth.response import parse_response
from blursynth.dataset import Manifest
from blursynth.synthetic import write_sample_clip as sample_clip  # noqa: F401  (the `sample` command)

__all__ = ["blur", "make_highspeed", "make_panorama", "open_dataset", "sample_clip", "torch_dataset", "Dataset"]

_RUN_FIELDS = {f.name for f in dataclasses.fields(RunOptions)}


def _with_recipe(config_cls, recipe, kwargs: dict) -> dict:
    """``kwargs`` completed by the recipe's values (keyword arguments win, as flags do on the CLI)."""
    if recipe is None:
        return kwargs
    from blursynth.recipes import config_fields, find_recipe, load_recipe

    path = find_recipe(recipe)
    if path is None:
        raise BlursynthError(f"recipe {recipe}: no such file and no installed recipe of that name")
    return {**config_fields(load_recipe(path), config_cls, kwargs), **kwargs}


def _split(config_cls, kwargs: dict) -> tuple[dict, RunOptions]:
    """Keyword arguments -> (config fields, RunOptions); an unknown name is an error."""
    config_fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(kwargs) - config_fields - _RUN_FIELDS)
    if unknown:
        raise TypeError(f"unknown argument {unknown[0]!r}; expected one of "
                        f"{', '.join(sorted(config_fields | _RUN_FIELDS))}")
    run = {k: v for k, v in kwargs.items() if k in _RUN_FIELDS}
    run.setdefault("quiet", True)
    return {k: v for k, v in kwargs.items() if k in config_fields}, RunOptions(**run)


def _tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def make_highspeed(src: str | Path | Sequence[str | Path], *, recipe: str | Path | None = None,
                   **kwargs) -> Manifest:
    """Make a high-speed blur dataset (the ``highspeed`` command; Kim et al. 2017, Eq. 1).

    Parameters
    ----------
    src : path or sequence of paths
        Frame folders, trees of them, or videos (``--src``).
    **kwargs
        Any field of :class:`blursynth.highspeed.HighspeedConfig` (``tau``,
        ``T``, ``fps``, ``repeats``, ``seq_len``, ``latent``, ``response``
        (a comma list such as ``"gamma,linear"`` stores one rendition per
        curve: ``blur``, ``blur_linear``), ``gamma``, ``resize`` as ``(W, H)``, ``(W, None)`` or ``(None, H)``,
        ``seed``) or of :class:`blursynth.run.engine.RunOptions` (``out``,
        ``shard_size``, ``compression``, ``workers``, ``overwrite``,
        ``skip_bad``, ``quiet`` - True unless given). ``tau`` may be one int.
    recipe : str or Path, optional
        A recipe (``--recipe``): the name of an installed one (``"kim2017_dtb"``)
        or a TOML file (:mod:`blursynth.recipes`). Its values fill the fields
        not given as keyword arguments; keyword arguments win, as flags do.

    Returns
    -------
    Manifest
        The finished dataset's manifest (``manifest.json`` in ``out``,
        default ``./highspeed-out``).
    """
    from blursynth.highspeed import HighspeedConfig, synthesize

    fields, options = _split(HighspeedConfig, _with_recipe(HighspeedConfig, recipe, kwargs))
    if "tau" in fields:
        fields["tau"] = _tuple(fields["tau"])
    if isinstance(fields.get("T"), (list, tuple, int)):
        fields["T"] = _tuple(fields["T"])
    srcs = (src,) if isinstance(src, (str, Path)) else tuple(src)
    return synthesize(HighspeedConfig(src=tuple(str(s) for s in srcs), **fields), options)


def make_panorama(n: int, *, recipe: str | Path | None = None, **kwargs) -> Manifest:
    """Make a panorama rotation-blur dataset (the ``panorama`` command; Argaw et al. 2021).

    Parameters
    ----------
    n : int
        Number of samples.
    **kwargs
        Any field of :class:`blursynth.panorama.PanoramaConfig` or of
        :class:`blursynth.run.engine.RunOptions`, as in :func:`make_highspeed`;
        ``src`` defaults to the bundled panoramas. ``size`` is ``(W, H)``, as
        ``--size WxH``.
    recipe : str or Path, optional
        A recipe, as in :func:`make_highspeed` (``"argaw2021_panorama"``).

    Returns
    -------
    Manifest
        The finished dataset's manifest (``out`` defaults to ``./panorama-out``).
    """
    from blursynth.panorama import PanoramaConfig, synthesize

    fields, options = _split(PanoramaConfig, _with_recipe(PanoramaConfig, recipe, kwargs))
    if "src" in fields:
        src = fields["src"]
        fields["src"] = tuple(str(s) for s in ((src,) if isinstance(src, (str, Path)) else src))
    return synthesize(PanoramaConfig(n=n, **fields), options)


def torch_dataset(path: str | Path):
    """A ``torch.utils.data.Dataset`` over ``path`` (:func:`blursynth.dataset.torch_data.torch_dataset`);
    torch is imported here, on first use."""
    from blursynth.dataset.torch_data import torch_dataset as make

    return make(path)


def deblur(input: str | Path, run: str | Path, out: str | Path, **kwargs) -> dict:
    """Deblur a folder of frames, an image or a video with the model of a training run
    (the ``deblur`` command; :func:`reference_models.apply.deblur`, whose keyword
    arguments ``device``, ``amp`` and ``progress`` pass through). torch is imported here,
    on first use."""
    from reference_models.apply import deblur as apply

    return apply(input, run, out, **kwargs)


def blur(frames, response: str = "gamma", gamma: float = 2.2) -> np.ndarray:
    """Average frames in linear light into one blurred frame (Kim et al. 2017, Eq. 1).

    ``B = g(mean_j g^-1(X_j))`` with ``g`` the camera response.

    Parameters
    ----------
    frames : array [N, H, W, C] or sequence of [H, W, C] arrays
        The frames of one exposure, uint8 (code values) or float (encoded
        values in [0, 1]); channel order does not matter.
    response : str
        ``gamma`` (with ``gamma``), ``gamma:G``, ``srgb``, ``linear`` or
        ``crf:FILE``, as ``--response``.
    gamma : float
        The exponent of ``response="gamma"``.

    Returns
    -------
    ndarray [H, W, C]
        uint8 for uint8 input (the same tables as the pipelines, so the same
        bytes as ``highspeed`` for the same frames), else float64 in [0, 1].

    Examples
    --------
    >>> import numpy as np, blursynth
    >>> frames = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (0, 254)])
    >>> int(blursynth.blur(frames, response="linear")[0, 0, 0])
    127
    """
    curve = parse_response(response, gamma)
    stack = [np.asarray(f) for f in frames]
    if not stack:
        raise BlursynthError("blur: give at least one frame")
    if any(f.shape != stack[0].shape for f in stack):
        raise BlursynthError(f"blur: frames differ in shape ({stack[0].shape} vs "
                             f"{next(f.shape for f in stack if f.shape != stack[0].shape)})")
    if stack[0].dtype == np.uint8:
        return curve.average([np.ascontiguousarray(f) for f in stack])
    if stack[0].dtype.kind != "f":
        raise TypeError(f"blur: frames must be uint8 or float, got {stack[0].dtype}")
    linear = np.mean([curve.inverse(np.clip(f.astype(np.float64), 0.0, 1.0)) for f in stack], axis=0)
    return np.asarray(curve.forward(linear), dtype=np.float64)
