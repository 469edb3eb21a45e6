"""Reference deblurring models that check a blursynth dataset teaches a network to deblur.

One file per architecture (``dtb.py``: STRCNN+DTB, Kim et al. 2017) holds the
network, its :class:`~reference_models.task.ModelTask` (loss, learning-rate
schedule, data, scoring) and its ``@register_model`` constructors. Training,
evaluation, splitting and data validation are architecture-independent:
:mod:`.train`, :mod:`.evaluate`, :mod:`.split`, :mod:`.validate`; shared blocks
live in :mod:`.layers`, devices and DDP in :mod:`.runtime`, checkpoints in
:mod:`.checkpoint`.
"""

from reference_models.registry import create_model, is_model, list_models, register_model
from reference_models.task import ModelTask, task_of

# Importing a model file registers its models.
from reference_models import blur2video, dtb, fsta  # noqa: E402,F401

__all__ = ["ModelTask", "create_model", "is_model", "list_models", "register_model", "task_of"]
