"""Reference deblurring models that check a blursynth dataset teaches a network to deblur.

One file per architecture (``dtb.py``: STRCNN+DTB, Kim et al. 2017) holds the
network, its :class:`~reference_models.task.ModelTask` (the whole contract: the
data it learns from and validates, how it runs at inference, loss, schedule,
presets, scoring) and its ``@register_model`` constructors. The registry finds
model files by itself (:mod:`.registry`: a scan of this folder, the
``BLURSYNTH_MODELS`` variable, the ``blursynth.models`` entry points), so this
file names no model. Training, evaluation, held-out draws and data validation
are architecture-independent: :mod:`.train`, :mod:`.evaluate`, :mod:`.heldout`,
:mod:`.validate`; shared blocks live in :mod:`.layers`, devices and DDP in
:mod:`.runtime`, checkpoints in :mod:`.checkpoint`.
"""

from reference_models.registry import create_model, is_model, list_models, model_for_data, register_model, task_for
from reference_models.task import ModelTask, task_of

__all__ = ["ModelTask", "create_model", "is_model", "list_models", "model_for_data", "register_model", "task_for",
           "task_of"]
