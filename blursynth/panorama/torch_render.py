"""The panorama renderer on ``torch.nn.functional.grid_sample`` (``--device cuda``).

It samples the same padded linear panorama as the OpenCV path
(:mod:`blursynth.panorama.render`) at the same pixel coordinates
(:func:`blursynth.panorama.geometry.equirect_pixel_affine`), converted once to
``grid_sample``'s normalized coordinates (:func:`blursynth.panorama.geometry.pixel_to_grid`).
"""

from __future__ import annotations

import numpy as np

import blursynth.panorama.geometry as geometry

# Frames per torch.grid_sample call.
TORCH_BATCH = 32


class TorchViews:
    """The panorama renderer on ``torch.nn.functional.grid_sample`` (``--device cuda``).

    The panorama is padded exactly as on the CPU path (seam wrapped, poles
    continued), and the pixel coordinates of
    :func:`blursynth.panorama.geometry.equirect_pixel_affine` become ``grid_sample``'s
    normalized ones (:func:`blursynth.panorama.geometry.pixel_to_grid`). Frames are
    rendered in batches stacked along the grid's height.

    Parameters
    ----------
    pano : ndarray
        float32 ``[H + 2, W + 2 pad_x, C]``, a padded linear panorama.
    size : (int, int)
        ``(H, W)`` of the camera.
    fov : float
        Horizontal field of view in degrees.
    device : str
        A torch device.
    """

    def __init__(self, pano: np.ndarray, size: tuple[int, int], fov: float, device: str = "cuda"):
        import torch
        self.torch = torch
        self.device = torch.device(device)
        self.size = tuple(size)
        self.pano = torch.from_numpy(np.array(pano)).to(self.device).permute(2, 0, 1).contiguous()[None]
        self.rays = torch.from_numpy(np.array(geometry.camera_rays(self.size, float(fov)))).to(self.device)
        (ph, pw), pad_x = geometry.padded_layout(pano.shape)
        hp, wp = pano.shape[:2]
        sx, ox, sy, oy = geometry.equirect_pixel_affine((ph, pw), geometry.PAD, pad_x)
        self.sx, self.ox = geometry.pixel_to_grid(sx, ox, wp)
        self.sy, self.oy = geometry.pixel_to_grid(sy, oy, hp)

    def _batch(self, rotations: np.ndarray):
        torch = self.torch
        h, w = self.size
        mats = torch.from_numpy(np.ascontiguousarray(rotations, dtype=np.float32)).to(self.device)
        world = mats @ self.rays  # [B, 3, N]
        gx = torch.atan2(world[:, 0], world[:, 2]) * self.sx + self.ox
        gy = torch.acos(world[:, 1].clamp(-1.0, 1.0)) * self.sy + self.oy
        grid = torch.stack([gx, gy], dim=-1).reshape(1, len(rotations) * h, w, 2)
        out = torch.nn.functional.grid_sample(self.pano, grid, mode="bilinear", padding_mode="border",
                                              align_corners=True)
        return out.reshape(-1, len(rotations), h, w).permute(1, 2, 3, 0)  # [B, H, W, C]

    def render(self, rotations: np.ndarray, keep: list[bool]):
        """Sum of the views of ``rotations`` and a copy of the ones marked in ``keep``.

        The same contract as :meth:`blursynth.panorama.render.CpuViews.render`;
        the results are copied back to the CPU.
        """
        torch = self.torch
        h, w = self.size
        total = torch.zeros((h, w, self.pano.shape[1]), dtype=torch.float32, device=self.device)
        kept = {}
        with torch.no_grad():
            for start in range(0, len(rotations), TORCH_BATCH):
                views = self._batch(rotations[start:start + TORCH_BATCH])
                total += views.sum(dim=0)
                for i in range(start, min(start + TORCH_BATCH, len(rotations))):
                    if keep[i]:
                        kept[i] = views[i - start].cpu().numpy()
        return total.cpu().numpy(), kept
