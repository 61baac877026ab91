"""The analytic MAC-array timing (:func:`.timing.array_cycles`) against SCALE-Sim's.

SCALE-Sim (``scalesim`` on PyPI, version 3; Samajdar et al.) models a systolic array cycle by
cycle: for a layer and a dataflow it builds the operand matrices and, from them, one row of
SRAM demand per array cycle. :func:`scalesim_cycles` runs that compute model for one layer on
one tile's array (weight stationary, the tiles' dataflow) and returns the number of demand
rows: the array's cycles for the layer with operands always ready. SCALE-Sim's memory model
(its double-buffered scratchpads behind a DRAM bandwidth) is not used: the tile simulator has
its own (:mod:`.simulator`), and SCALE-Sim 3.0.0's fails under NumPy 2 (it converts a
one-element array with ``int()``).

SCALE-Sim takes a convolution as ifmap height and width, filter height and width, channels,
filters and one stride. It has no padding and rounds its output size up where ONNX rounds
down, so the ifmap given is the padded rows and columns the windows read,
``(out - 1) * stride + kernel``: the same windows, the same output positions. A fully
connected layer is a 1 x 1 convolution over a 1 x 1 ifmap. Dilated convolutions have no
SCALE-Sim form.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

from edgec.backends.tile.layers import TileLayer
from edgec.errors import EdgecError
from edgec.target_kinds.tile import TileTarget

_CONFIG = """[general]
run_name = edgec

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
ifmapsramszkB = {kib}
filtersramszkB = {kib}
ofmapsramszkB = {kib}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Dataflow = ws
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
FilterCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
"""
_HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"


def topology_row(layer: TileLayer) -> list[int]:
    """SCALE-Sim's convolution row for ``layer``: ifmap height and width (padded), filter
    height and width, channels, filters, stride."""
    if layer.op == "FullyConnected":
        return [1, 1, 1, 1, layer.reduction_channels, layer.output_shape[-1], 1]
    if layer.op != "Conv":
        raise EdgecError(f"layer {layer.name} ({layer.op}) does not run on the MAC array",
                         "compare Conv and FullyConnected layers")
    attrs = layer.attrs
    if list(attrs["dilations"]) != [1, 1] or attrs["strides"][0] != attrs["strides"][1]:
        raise EdgecError(f"layer {layer.name} is dilated or strided unequally, which SCALE-Sim cannot take",
                         "compare an undilated layer with equal strides")
    channels = layer.input_shapes[0][-1]
    _, out_h, out_w, filters = layer.output_shape
    _, kh, kw, _ = (int(d) for d in layer.node.inputs[1].shape.numpy())
    stride = int(attrs["strides"][0])
    return [(out_h - 1) * stride + kh, (out_w - 1) * stride + kw, kh, kw, channels, filters, stride]


def scalesim_cycles(layer: TileLayer, target: TileTarget) -> int:
    """SCALE-Sim's compute cycles for ``layer`` whole on one tile's array (module docstring)."""
    try:
        from scalesim.layout_utils import layouts
        from scalesim.scale_config import scale_config
        from scalesim.single_layer_sim import single_layer_sim
        from scalesim.topology_utils import topologies
    except ImportError:
        raise EdgecError("SCALE-Sim is not installed", "install it: pip install 'edgec[tile]' "
                         "(scripts/setup.sh installs it)") from None
    row = ", ".join(str(v) for v in topology_row(layer))
    with tempfile.TemporaryDirectory(prefix="edgec-scalesim-") as work:
        work = Path(work)
        kib = max(1, target.grid.tile.sram_bytes // 1024)
        (work / "tile.cfg").write_text(_CONFIG.format(rows=target.grid.tile.array_rows,
                                                      cols=target.grid.tile.array_cols, kib=kib))
        for name in ("topology.csv", "layout.csv"):
            (work / name).write_text(f"{_HEADER}{layer.name}, {row},\n")
        with contextlib.redirect_stdout(io.StringIO()):
            config = scale_config()
            config.read_conf_file(str(work / "tile.cfg"))
            topology = topologies()
            topology.load_arrays(topofile=str(work / "topology.csv"))
            layout = layouts()
            layout.load_arrays(layoutfile=str(work / "layout.csv"))
            sim = single_layer_sim()
            sim.set_params(layer_id=0, config_obj=config, topology_obj=topology, layout_obj=layout, verbose=False)
            operands = sim.op_mat_obj
            sim.compute_system.set_params(
                config_obj=config, ifmap_op_mat=operands.get_ifmap_matrix()[1],
                filter_op_mat=operands.get_filter_matrix()[1], ofmap_op_mat=operands.get_ofmap_matrix()[1],
                sparsity_ratio_N=sim.sparsity_ratio_N, sparsity_ratio_M=sim.sparsity_ratio_M,
                ifmap_op_mat_original=operands.ifmap_addr_matrix_original,
                sparsity_filter_array=operands.sparse_filter_array)
            ifmap_demand, _, _ = sim.compute_system.get_demand_matrices()
    return int(ifmap_demand.shape[0])
