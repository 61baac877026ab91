"""The Cortex-M layer of a TransposeConv: ``edgec_transpose_conv`` (``kernels/edgec_transpose_conv.c``).

The kernel gathers, per output pixel, the taps whose input pixel exists (see the kernel's
comment); the weights stay ``[Cout][kh][kw][Cin]`` as the node holds them, the bias is the
node's (zeros without one), and the input zero point is folded per output channel and tap
(``weight_sums``: ``zp_in * sum over Cin of w``), subtracted only where a tap is valid.
Requantization is the generic stage over ``edgec_requant_t`` rows.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.backends.cortex_m.clayer import CArray, CLayer, shape_of
from edgec.backends.cortex_m.output_stage import requant_table


def transpose_conv_layer(node: ir.Node, prefix: str, attrs: dict) -> CLayer:
    x, y = shape_of(node.inputs[0]), shape_of(node.outputs[0])
    weights = node.inputs[1].const_value.numpy()
    cout, k_h, k_w, _ = weights.shape
    has_bias = len(node.inputs) > 2 and node.inputs[2] is not None
    bias = node.inputs[2].const_value.numpy().astype(np.int32) if has_bias else np.zeros(cout, dtype=np.int32)
    sums = int(attrs["input_zero_point"]) * weights.astype(np.int64).sum(axis=3)
    arrays = [CArray(f"{prefix}_weights", "int8_t", weights.ravel()),
              CArray(f"{prefix}_bias", "int32_t", bias),
              CArray(f"{prefix}_weight_sums", "int32_t", sums.astype(np.int32).ravel()),
              requant_table(f"{prefix}_requant", attrs["output_multiplier"], attrs["output_shift"],
                            attrs["output_zero_point"], cout)]
    params = {"weights": f"{prefix}_weights", "bias": f"{prefix}_bias", "weight_sums": f"{prefix}_weight_sums",
              "requant": f"{prefix}_requant", "batches": x[0], "in_h": x[1], "in_w": x[2], "in_c": x[3],
              "out_h": y[1], "out_w": y[2], "out_c": y[3], "k_h": k_h, "k_w": k_w,
              "stride_h": attrs["strides"][0], "stride_w": attrs["strides"][1], "pad_top": attrs["pads"][0],
              "pad_left": attrs["pads"][1], "output_zero_point": attrs["output_zero_point"],
              "activation_min": attrs["activation_min"], "activation_max": attrs["activation_max"]}
    return CLayer(node, "edgec_transpose_conv.c", f"edgec_transpose_conv(&{prefix}, {{in0}}, {{out}})", arrays,
                  "edgec_transpose_conv_params", params)
