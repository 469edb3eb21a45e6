"""The built-in panorama reference test set of ``validate``: real scenes that no default dataset uses."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from blursynth.dataset import Manifest
from blursynth.panorama.config import PanoramaConfig
from blursynth.sources.panoramas import BUILTIN_DIR, RESERVED_DIR, default_sources, reserved_panoramas
from reference_models.data import ShardIndex
from reference_models.sample_data import reference_test_set


def _pixels(path: Path) -> str:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.ndim == 3, path
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def test_reserved_panoramas_are_six_real_scenes_that_no_default_dataset_holds():
    reserved = sorted(p for p in RESERVED_DIR.iterdir() if p.suffix == ".hdr")
    assert [p.name for p in reserved] == [f"{n}.hdr" for n in ("city", "forest", "night", "studio", "sunrise",
                                                               "sunset")]
    assert reserved_panoramas() == reserved
    assert (RESERVED_DIR / "LICENSE.txt").read_text().count("CC0") >= 1
    # not under the bundled folder (a --src folder is searched recursively), and not a default source
    assert BUILTIN_DIR not in RESERVED_DIR.parents
    assert not {Path(s).resolve() for s in default_sources()} & {p.resolve() for p in reserved}
    # no reserved scene is a bundled one under another name
    bundled = {_pixels(p) for p in BUILTIN_DIR.iterdir() if p.suffix == ".hdr"}
    assert len(bundled) == 2 and not bundled & {_pixels(p) for p in reserved}
    for path in reserved:  # real HDR radiance, 2:1
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert image.dtype == np.float32 and image.shape == (512, 1024, 3) and float(image.max()) > 1.0


def test_panorama_reference_set_is_the_reserved_scenes_with_the_default_camera():
    root = reference_test_set("panorama", video=False, latent=0, log=lambda msg: None)
    manifest = Manifest.load(root)
    assert manifest.kind == "panorama" and manifest.complete
    index = ShardIndex(root)
    assert sorted(index.sources) == [p.name for p in reserved_panoramas()]
    counts = {s: sum(1 for ref in index.refs if ref.source == s) for s in index.sources}
    assert set(counts.values()) == {8}
    config, default = manifest.config, PanoramaConfig()
    assert sorted(Path(s).name for s in config["src"]) == [p.name for p in reserved_panoramas()]
    for name in ("fov", "max_rotation", "max_pitch", "max_step"):
        assert config[name] == getattr(default, name), name
    assert tuple(config["size"]) == default.size
