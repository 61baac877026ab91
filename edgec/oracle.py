"""onnxruntime as an independent oracle for an integer graph, layer by layer and end to end.

:func:`qdq_twin` rebuilds the canonical float model as an ONNX QDQ model that uses exactly
the integer graph's quantization: every float tensor held by an int8 value is followed by
``QuantizeLinear -> DequantizeLinear`` with that value's scale and zero point (the int8
tensor is named ``<tensor>__q``), and every Conv/Gemm/MatMul reads ``DequantizeLinear`` of
the integer graph's own int8 weights and int32 bias. onnxruntime runs it with its own
kernels, so the only expected differences are float-versus-fixed-point roundings.

:func:`compare_layers` cuts one single-layer model per float tensor out of the twin, feeds
it the int8 input the reference executor produced, and compares int8 outputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx_ir.passes import common

from edgec import ops
from edgec.passes.graph_utils import add_initializer, const_array
from edgec.passes.integer_builder import channels_first_perm
from edgec.passes.qparams import get_channel_scales, get_qparams
from edgec.reference import ReferenceExecutor

QUANTIZED_SUFFIX = "__q"
_WEIGHTED = {"Conv", "DepthwiseConv", "FullyConnected"}
#: onnxruntime's log severity in edgec's sessions: errors only (no ``[W:onnxruntime ...]`` lines).
ORT_LOG_SEVERITY = 3


@dataclasses.dataclass(frozen=True)
class LayerComparison:
    """int8 outputs of one layer, edgec against onnxruntime, on the same int8 inputs."""

    tensor: str
    op: str
    elements: int
    identical: int
    max_abs_diff: int

    @property
    def identical_fraction(self) -> float:
        return self.identical / self.elements


def int_values_by_source(int_model: ir.Model) -> dict[str, ir.Value]:
    """Float tensor name -> the int8 value holding it."""
    found = {}
    for node in int_model.graph:
        for value in node.outputs:
            source = value.metadata_props.get(ops.SOURCE_KEY)
            if source is not None and source not in found:
                found[source] = value
    return found


def to_float_layout(value: ir.Value, array: np.ndarray) -> np.ndarray:
    """An int8 array of ``value`` in the float model's layout (undoing channels-last)."""
    if value.metadata_props.get(ops.LAYOUT_KEY) == "nhwc":
        return np.ascontiguousarray(array.transpose(channels_first_perm(array.ndim)))
    return array


def _dq(graph: ir.Graph, node: ir.Node, array: np.ndarray, scale: np.ndarray, axis: int, name: str) -> ir.Value:
    def init(suffix: str, data: np.ndarray) -> ir.Value:
        return add_initializer(graph, f"{name}_{suffix}", data)

    zero = np.zeros(scale.shape, dtype=array.dtype)
    attrs = {"axis": axis} if scale.size > 1 else {}
    if scale.size == 1:
        scale, zero = scale.reshape(()), zero.reshape(())
    dq = ir.node("DequantizeLinear", [init("q", array), init("scale", scale.astype(np.float32)), init("zp", zero)],
                 attrs, name=f"{name}_dq")
    dq.outputs[0].name = f"{name}_dequantized"
    graph.insert_before(node, dq)
    return dq.outputs[0]


def _float_weights(float_node: ir.Node, int_node: ir.Node) -> tuple[np.ndarray, int]:
    """The int8 weights of ``int_node`` in the ONNX layout of ``float_node``, and their channel axis."""
    w = int_node.inputs[1].const_value.numpy()
    float_shape = const_array(float_node.inputs[1]).shape
    if int_node.op_type == "Conv":
        return w.transpose(0, 3, 1, 2).reshape(float_shape), 0
    if int_node.op_type == "DepthwiseConv":
        return w.transpose(3, 0, 1, 2).reshape(float_shape), 0
    if float_node.op_type == "Gemm":
        return w, 0  # the twin's Gemm is made transB=1
    return np.ascontiguousarray(w.T), 1  # MatMul: [K, N]


def _use_integer_weights(graph: ir.Graph, float_node: ir.Node, int_node: ir.Node) -> None:
    weights, axis = _float_weights(float_node, int_node)
    scales = get_channel_scales(int_node.inputs[1])[0]
    float_node.replace_input_with(1, _dq(graph, float_node, weights, scales, axis, f"{float_node.name}_w"))
    if float_node.op_type == "Gemm":
        for name, value in (("transB", 1), ("alpha", 1.0), ("beta", 1.0)):
            float_node.attributes[name] = ir.convenience.convert_attribute(name, value)
    bias = int_node.inputs[2].const_value.numpy() if len(int_node.inputs) > 2 and int_node.inputs[2] is not None else None
    if bias is not None and float_node.op_type in ("Conv", "Gemm"):
        input_scale = get_qparams(int_node.inputs[0]).scale
        bias_scales = (np.float64(input_scale) * scales.astype(np.float64)).astype(np.float32)
        value = _dq(graph, float_node, bias, bias_scales, 0, f"{float_node.name}_b")
        if len(float_node.inputs) < 3:
            float_node.resize_inputs(3)
        float_node.replace_input_with(2, value)


def qdq_twin(float_model: ir.Model, int_model: ir.Model) -> onnx.ModelProto:
    """The QDQ model with the integer graph's quantization (see the module docstring)."""
    twin = ir.serde.deserialize_model(ir.to_proto(float_model))
    graph = twin.graph
    by_source = int_values_by_source(int_model)
    for node in int_model.graph:
        if node.op_type == "Quantize":
            by_source.setdefault(node.inputs[0].name, node.outputs[0])
    for node in list(graph):
        held = by_source.get(node.outputs[0].name)
        consumers = node.outputs[0].consumers()
        if held is None and len(consumers) == 1 and consumers[0].op_type in ("Relu", "Clip"):
            held = by_source.get(consumers[0].outputs[0].name)
        producer = held.producer() if held is not None else None
        if (producer is not None and producer.op_type in _WEIGHTED and node.op_type in ("Conv", "Gemm", "MatMul")
                and const_array(node.inputs[1]) is not None):
            _use_integer_weights(graph, node, producer)
    values = list(graph.inputs) + [out for node in graph for out in node.outputs]
    for value in values:
        held = by_source.get(value.name)
        q = get_qparams(held) if held is not None else None
        if q is None:
            continue
        inits = [add_initializer(graph, f"{value.name}__scale", np.array(q.scale, dtype=np.float32)),
                 add_initializer(graph, f"{value.name}__zp", np.array(q.zero_point, dtype=np.int8))]
        users = [(use.node, use.idx) for use in value.uses()]
        quantize = ir.node("QuantizeLinear", [value, *inits], name=f"{value.name}__quantize")
        quantize.outputs[0].name = value.name + QUANTIZED_SUFFIX
        dequantize = ir.node("DequantizeLinear", [quantize.outputs[0], *inits], name=f"{value.name}__dequantize")
        dequantize.outputs[0].name = f"{value.name}__dq"
        if value.producer() is None:
            graph.insert_before(graph.node(0), [quantize, dequantize])
        else:
            graph.insert_after(value.producer(), [quantize, dequantize])
        for user, index in users:
            user.replace_input_with(index, dequantize.outputs[0])
        if value.is_graph_output():
            graph.outputs.append(quantize.outputs[0])
    common.RemoveUnusedNodesPass()(twin)
    return onnx.shape_inference.infer_shapes(ir.to_proto(twin))


def ort_session(model: onnx.ModelProto | bytes, as_written: bool = False) -> ort.InferenceSession:
    """An onnxruntime CPU session for ``model``. ``as_written`` turns graph optimizations off, so
    that a QDQ graph is evaluated as written: DequantizeLinear, the float operator,
    QuantizeLinear. (With them on, onnxruntime fuses QDQ groups into its own int8 kernels,
    whose x86 int8 GEMM can saturate intermediate sums: not a faithful oracle.)"""
    options = ort.SessionOptions()
    options.log_severity_level = ORT_LOG_SEVERITY
    if as_written:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def compare_layers(float_model: ir.Model, int_model: ir.Model,
                   samples: list[dict[str, np.ndarray]]) -> list[LayerComparison]:
    """Compare every int8 tensor of the integer graph with onnxruntime's, layer by layer.

    Each layer's figures aggregate all ``samples``; every layer is fed, for each sample,
    the int8 inputs the reference executor produced.
    """
    twin = qdq_twin(float_model, int_model)
    produced = {name for node in twin.graph.node for name in node.output}
    by_source = int_values_by_source(int_model)
    extractor = onnx.utils.Extractor(twin)
    float_nodes = {out.name: node for node in float_model.graph for out in node.outputs}
    layers = []
    for tensor, value in by_source.items():
        node = float_nodes.get(tensor)
        if node is None or tensor + QUANTIZED_SUFFIX not in produced or value.producer().op_type == "Quantize":
            continue
        layer_nodes = [node]
        source = node.inputs[0].producer() if node.op_type in ("Relu", "Clip") and node.inputs[0] is not None else None
        if source is not None and source.outputs[0].name not in by_source:
            layer_nodes.insert(0, source)  # fused: the activation and its producer form one layer
        inputs = [v.name for n in layer_nodes for v in n.inputs
                  if v is not None and v.const_value is None and v.name in by_source]
        if inputs:
            sub = extractor.extract_model([n + QUANTIZED_SUFFIX for n in inputs], [tensor + QUANTIZED_SUFFIX])
            layers.append((tensor, value, inputs, ort_session(sub, as_written=True)))
    executor = ReferenceExecutor(int_model)
    totals = {tensor: [0, 0, 0] for tensor, *_ in layers}
    for sample in samples:
        ours = executor.run(sample, keep_intermediates=True)
        for tensor, value, inputs, session in layers:
            feeds = {n + QUANTIZED_SUFFIX: to_float_layout(by_source[n], ours[by_source[n].name]) for n in inputs}
            theirs = session.run(None, feeds)[0]
            diff = np.abs(to_float_layout(value, ours[value.name]).astype(np.int32) - theirs.astype(np.int32))
            total = totals[tensor]
            total[0] += diff.size
            total[1] += int((diff == 0).sum())
            total[2] = max(total[2], int(diff.max()))
    return [LayerComparison(tensor, value.producer().op_type, *totals[tensor]) for tensor, value, *_ in layers]


def run_twin(float_model: ir.Model, int_model: ir.Model, samples: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Run the whole QDQ twin on every sample; returns ``{output name: int8 outputs}`` for the
    model's outputs, the samples' results concatenated on axis 0."""
    session = ort_session(qdq_twin(float_model, int_model), as_written=True)
    names = [v.name + QUANTIZED_SUFFIX for v in float_model.graph.outputs]
    results = [session.run(names, sample) for sample in samples]
    return {v.name: np.concatenate([r[i] for r in results]) for i, v in enumerate(float_model.graph.outputs)}
