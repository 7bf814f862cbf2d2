"""What a network is: its role (teacher or student, which says the refinements and PD factors that apply)
and the one table from a weight file's ``network`` name to its class.

A network class answers for itself: ``kind`` (its name in weight files), ``role`` (a :class:`Role`),
``arch`` (its constructor arguments, stored as metadata), ``align``, ``receptive_radius``,
``activation_bytes_per_pixel``, ``macs_per_pixel()`` and ``precise_layers``. The denoiser, the exporter,
the benchmark and every report read ``role`` instead of asking for the class.
"""

from __future__ import annotations

import torch

from .dbsnl import DBSNl
from .roles import STUDENT, TEACHER, Role
from .student import StudentUNet

__all__ = ["Role", "TEACHER", "STUDENT", "NETWORKS"]

NETWORKS: dict[str, type[torch.nn.Module]] = {cls.kind: cls for cls in (DBSNl, StudentUNet)}
"""``network`` metadata -> network class (``kind`` is the key; files without the key hold a DBSNl)."""
