"""Independent computations the tests compare the library with.

Written from the standards and papers, in float64, without calling blursynth.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch


def srgb_encode(x):
    """sRGB transfer function, IEC 61966-2-1: linear [0, 1] -> encoded [0, 1] (float64).

    ``12.92 x`` for ``x <= 0.0031308``, else ``1.055 x^(1/2.4) - 0.055``; input is
    clipped to [0, 1] first (as a camera saturates).
    """
    x = np.clip(np.asarray(x, dtype=np.float64), 0, 1)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def srgb_decode(v):
    """Inverse sRGB transfer function, IEC 61966-2-1: encoded [0, 1] -> linear (float64).

    ``v / 12.92`` for ``v <= 0.04045``, else ``((v + 0.055) / 1.055)^2.4``.
    """
    v = np.asarray(v, dtype=np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode_8bit(x):
    """:func:`srgb_encode` to 8-bit codes, rounded to nearest (float64 values 0..255)."""
    return np.rint(255 * srgb_encode(x))


def srgb_decode_8bit(code):
    """:func:`srgb_decode` of 8-bit codes 0..255."""
    return srgb_decode(np.asarray(code, dtype=np.float64) / 255)


def eq1_oracle(frames, start, tau, T, L, K=0, gamma=2.2):
    """Blur, sharp and latent frames of one sample, computed directly (float64)."""
    blur, sharp, latent = [], [], []
    for n in range(L):
        base = start + n * T
        window = np.stack(frames[base:base + tau]).astype(np.float64) / 255.0
        mean = np.mean(window ** gamma, axis=0)
        blur.append(255.0 * mean ** (1.0 / gamma))  # unrounded: see assert_blur_close
        sharp.append(frames[base + (tau - 1) // 2])
        if K:
            latent.append([frames[base + k * (tau - 1) // (K - 1)] for k in range(K)])
    return np.stack(blur), np.stack(sharp), (np.array(latent) if K else None)


def assert_blur_close(got, unrounded):
    """Equal to the exact rounding, except within 0.01 level of a rounding boundary
    (the encoder's documented table precision)."""
    diff = np.abs(got.astype(np.float64) - np.rint(unrounded))
    assert diff.max() <= 1, diff.max()
    near_boundary = np.abs(unrounded % 1 - 0.5) < 0.01
    assert np.all(diff[~near_boundary] == 0)


def as_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    """RGB uint8 [H, W, 3] frames -> [N, 3, H, W] float in [0, 1]."""
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0

def to8(x: torch.Tensor) -> np.ndarray:
    """[..., 3, H, W] in [0, 1] -> the 8-bit [..., H, W, 3] image it is saved as."""
    return (x * 255.0).round().clamp(0, 255).to(torch.uint8).movedim(-3, -1).numpy()

def read_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

def assert_within_one_lsb(written: np.ndarray, expected: np.ndarray) -> None:
    assert written.shape == expected.shape
    assert np.abs(written.astype(int) - expected.astype(int)).max() <= 1

@torch.no_grad()
def dtb_by_its_recurrence(model, frames: torch.Tensor) -> torch.Tensor:
    """Kim et al. Sec. 4 online: one step per frame, the end frames repeated m times, the state carried."""
    m = model.frames // 2
    padded = [frames[0]] * m + list(frames) + [frames[-1]] * m
    state, out = None, []
    for n in range(len(frames)):
        latent, state = model.step(torch.stack(padded[n:n + 2 * m + 1])[None], state)
        out.append(latent[0])
    return torch.stack(out)
