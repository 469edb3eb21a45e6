"""Where training runs: device, autocast, and the distributed process group.

:class:`Distributed` is a context manager that joins the process group that
``torchrun`` describes in the environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``) and, on exit, destroys the group only if it created it: a
caller that initialized the group itself keeps it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from blursynth.errors import BlursynthError

__all__ = ["Distributed", "autocast", "resolve_device"]


def resolve_device(device: str, local_rank: int = 0) -> str:
    """``auto``/``cpu``/``cuda``/``cuda:N`` -> a concrete device string.

    Parameters
    ----------
    device : str
        ``auto`` picks ``cuda`` when a GPU is visible, else ``cpu``.
    local_rank : int
        The process's GPU under ``torchrun`` (``cuda`` -> ``cuda:local_rank``).

    Raises
    ------
    BlursynthError
        For ``cuda`` without a CUDA device, or an unknown device name.
    """
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise BlursynthError(f"--device {device}: expected auto, cpu, cuda or cuda:N")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BlursynthError("--device cuda: no CUDA device is available (use --device cpu)")
        if device == "cuda":
            device = f"cuda:{local_rank}"
    return device


def autocast(device: str, amp: str):
    """bf16 autocast on the device's type; a no-op context for ``amp='none'``."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


@dataclass
class Distributed:
    """The process group of a ``torchrun`` launch (world 1 without one).

    Use as a context manager around training::

        with Distributed("auto") as env:
            ... env.device, env.rank, env.world, env.main ...

    Attributes
    ----------
    device : str
        The resolved device of this process.
    rank, world, local_rank : int
        From ``torchrun``'s environment (0, 1, 0 without it).
    """

    requested_device: str = "auto"
    device: str = "cpu"
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    _created: bool = False

    @property
    def main(self) -> bool:
        """Whether this process writes logs and checkpoints (rank 0)."""
        return self.rank == 0

    def __enter__(self) -> "Distributed":
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = resolve_device(self.requested_device, self.local_rank)
        if self.world <= 1:
            self.world, self.rank = 1, 0
            return self
        self.rank = int(os.environ["RANK"])
        if self.device.startswith("cuda"):
            torch.cuda.set_device(torch.device(self.device))
        if not dist.is_initialized():
            nccl = self.device.startswith("cuda")
            dist.init_process_group("nccl" if nccl else "gloo",
                                    device_id=torch.device(self.device) if nccl else None)
            self._created = True
        return self

    def __exit__(self, *exc) -> None:
        if self._created and dist.is_initialized():
            dist.destroy_process_group()
        self._created = False

    def any(self, flag: bool) -> bool:
        """``flag`` OR-ed over every rank (so that all ranks stop at the same step)."""
        if self.world <= 1:
            return flag
        t = torch.tensor(int(flag), device=self.device if self.device.startswith("cuda") else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()
