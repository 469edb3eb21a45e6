"""Reference deblurring models that check a blursynth dataset teaches a network to deblur.

One file per architecture (``dtb.py``: STRCNN+DTB, Kim et al. 2017); each
registers its constructors in :mod:`reference_models.registry`. Training,
evaluation, splitting and data validation are architecture-independent:
:mod:`.train`, :mod:`.evaluate`, :mod:`.split`, :mod:`.validate`.
"""

from reference_models.registry import create_model, is_model, list_models, register_model

# Importing a model file registers its models.
from reference_models import dtb, fsta  # noqa: E402,F401

__all__ = ["create_model", "is_model", "list_models", "register_model"]
