"""The table of float-operator lowerings used by :class:`passes.quantize.QuantizePass`.

One explicit entry per supported ONNX operator type; the functions live in
:mod:`passes.lower_compute` (arithmetic), :mod:`passes.lower_layout` (pooling and data
movement), :mod:`passes.lower_tables` (element-wise activations as tables) and
:mod:`passes.lower_control` (routers and ``If``).
"""

from __future__ import annotations

from edgec.passes.lower_compute import COMPUTE_LOWERINGS
from edgec.passes.lower_control import CONTROL_LOWERINGS
from edgec.passes.lower_layout import LAYOUT_LOWERINGS
from edgec.passes.lower_tables import TABLE_LOWERINGS

LOWERINGS = {**COMPUTE_LOWERINGS, **LAYOUT_LOWERINGS, **TABLE_LOWERINGS, **CONTROL_LOWERINGS}
