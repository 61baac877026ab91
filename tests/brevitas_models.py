"""Brevitas nets trained on scikit-learn's digits, and the integer outputs of three executors.

Shared by tests/test_qonnx.py and benchmarks/qonnx_exactness.py. Six nets: a linear MLP and a
small conv net at W8A8, W4A4 and W2A2 (weights and hidden activations of that width; the
input quantizer and the output quantizer are 8-bit, so every net's output is an int8
``QuantTensor``). Training is seeded and takes a few seconds per net on two cores. A third
kind, ``fullres`` (two convolutions at the full 8x8 resolution), serves benchmarks/fpga.py.

The three integer outputs compared, each an int64 array ``[samples, 10]``:

* :func:`brevitas_int_outputs`: Brevitas' own ``QuantTensor.int()`` of the module in eval mode;
* :func:`edgec_int_outputs`: edgec's reference executor on ``edgec.quantize(module)``, the int8
  tensor before the final Dequantize (:func:`edgec.api.int8_output_names`);
* :func:`qonnx_int_outputs`: ``qonnx.core.onnx_exec.execute_onnx`` on the QONNX export, whose
  float output is ``q * scale`` (one float32 product), divided by the output scale and rounded:
  exact, since ``|q| <= 128`` leaves the quotient within far less than 0.5 of ``q``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas import nn as qnn
from brevitas.export import export_qonnx
from brevitas.quant import Int8ActPerTensorFloat, Int32Bias
from sklearn.datasets import load_digits

import edgec
from edgec.api import int8_output_names
from edgec.frontend.torch_frontend import _quiet_exporter
from edgec.reference import ReferenceExecutor

#: (name, weight and activation bits) of the six nets.
NETS = [(f"{kind}_w{bits}a{bits}", kind, bits) for kind in ("mlp", "conv") for bits in (8, 4, 2)]
TRAIN_SAMPLES = 1200
SEED = 0


@dataclasses.dataclass(frozen=True)
class Digits:
    """scikit-learn's 8x8 digits as float32 in [0, 1], ``[N, 1, 8, 8]``, split by a fixed permutation."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def digits() -> Digits:
    data = load_digits()
    images = (data.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    order = np.random.default_rng(SEED).permutation(len(images))
    train, test = order[:TRAIN_SAMPLES], order[TRAIN_SAMPLES:]
    return Digits(images[train], data.target[train], images[test], data.target[test])


class QuantMLP(torch.nn.Module):
    """8-bit input quantizer, Linear(64, 32) with Int32Bias, ReLU, Linear(32, 10) with Int32Bias,
    8-bit output quantizer; weights and the hidden activation of ``bits`` bits."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.input_quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, 32, bias=True, weight_bit_width=bits, bias_quant=Int32Bias,
                                   return_quant_tensor=True)
        self.relu1 = qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(32, 10, bias=True, weight_bit_width=bits, bias_quant=Int32Bias,
                                   output_quant=Int8ActPerTensorFloat, return_quant_tensor=True)

    def forward(self, x):
        return self.stages(x)[-1][2]

    def stages(self, x) -> list[tuple]:
        """``(layer, its input, the quantized output after it)`` for each layer with weights."""
        x = self.input_quant(x).flatten(1)
        hidden = self.relu1(self.fc1(x))
        return [(self.fc1, x, hidden), (self.fc2, hidden, self.fc2(hidden))]


class QuantConvNet(torch.nn.Module):
    """8-bit input quantizer, Conv 3x3 (1 -> 8, pad 1, Int32Bias), ReLU, MaxPool 2, Conv 3x3
    (8 -> 16, no bias), ReLU, Linear(64, 10) with Int32Bias, 8-bit output quantizer; weights
    and hidden activations of ``bits`` bits."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.input_quant = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.conv1 = qnn.QuantConv2d(1, 8, 3, padding=1, weight_bit_width=bits, bias_quant=Int32Bias,
                                     return_quant_tensor=True)
        self.relu1 = qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
        self.pool = torch.nn.MaxPool2d(2)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, bias=False, weight_bit_width=bits, return_quant_tensor=True)
        self.relu2 = qnn.QuantReLU(bit_width=bits, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(64, 10, bias=True, weight_bit_width=bits, bias_quant=Int32Bias,
                                  output_quant=Int8ActPerTensorFloat, return_quant_tensor=True)

    def forward(self, x):
        return self.stages(x)[-1][2]

    def stages(self, x) -> list[tuple]:
        """``(layer, its input, the quantized output after it)`` for each layer with weights."""
        x = self.input_quant(x)
        hidden1 = self.relu1(self.conv1(x))
        pooled = self.pool(hidden1)
        hidden2 = self.relu2(self.conv2(pooled))
        flat = hidden2.flatten(1)
        return [(self.conv1, x, hidden1), (self.conv2, pooled, hidden2), (self.fc, flat, self.fc(flat))]


class QuantFullResConvNet(QuantConvNet):
    """:class:`QuantConvNet` with both convolutions at the input's full 8x8 resolution (where a
    row-packed convolution pays, benchmarks/fpga.py): Conv 3x3 (8 -> 16) padded by 1, the
    MaxPool 4 after it instead of the MaxPool 2 between the convolutions."""

    def __init__(self, bits: int) -> None:
        super().__init__(bits)
        self.conv2 = qnn.QuantConv2d(8, 16, 3, padding=1, bias=False, weight_bit_width=bits,
                                     return_quant_tensor=True)
        self.pool = torch.nn.MaxPool2d(4)

    def stages(self, x) -> list[tuple]:
        """``(layer, its input, the quantized output after it)`` for each layer with weights."""
        x = self.input_quant(x)
        hidden1 = self.relu1(self.conv1(x))
        hidden2 = self.relu2(self.conv2(hidden1))
        flat = self.pool(hidden2).flatten(1)
        return [(self.conv1, x, hidden1), (self.conv2, hidden1, hidden2), (self.fc, flat, self.fc(flat))]


#: The net of each kind name.
KINDS = {"mlp": QuantMLP, "conv": QuantConvNet, "fullres": QuantFullResConvNet}


def build(kind: str, bits: int) -> torch.nn.Module:
    return KINDS[kind](bits)


def train(kind: str, bits: int, data: Digits, epochs: int = 8) -> torch.nn.Module:
    """A net trained with Adam (seeded; batch 64), returned in eval mode."""
    torch.manual_seed(SEED)
    net = build(kind, bits)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    generator = torch.Generator().manual_seed(SEED)
    net.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x[batch]).value, y[batch])
            loss.backward()
            optimizer.step()
    return net.eval()


def _layer_op(layer, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if isinstance(layer, qnn.QuantConv2d):
        return torch.nn.functional.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)
    return torch.nn.functional.linear(x, weight, bias)


def float_ties(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Per sample, how many values of its layers Brevitas rounds to another integer than the
    exact value would give: where the exact value ``(sum(x_q * w_q) + b_q) * s_x * s_w / s_y``
    (computed in float64, rounding error ~1e-16 relative) lies so close to a rounding boundary
    (``k + 0.5``) that Brevitas' float32 evaluation of the layer lands on the other side.

    Each layer's float32 value is recomputed as Brevitas computes it and checked to give
    Brevitas' own integers, so the count is about what Brevitas did.
    """
    ties = np.zeros(len(x), dtype=np.int64)
    with torch.no_grad():
        for layer, inp, out in net.stages(torch.from_numpy(x)):
            weight = layer.quant_weight()
            bias = None if layer.bias is None else layer.bias_quant(layer.bias, inp, weight)
            out_type = (float(out.zero_point), int(out.bit_width), bool(out.signed))
            low = -(2 ** (out_type[1] - 1)) if out_type[2] else 0
            high = 2 ** (out_type[1] - 1) - 1 if out_type[2] else 2 ** out_type[1] - 1
            as_float = _layer_op(layer, inp.value, weight.value, None if bias is None else bias.value)
            brevitas = torch.round(torch.clamp(as_float / out.scale + out.zero_point, low, high))
            assert torch.equal(brevitas, out.int().to(brevitas.dtype)), "float32 recomputation differs from Brevitas"
            accumulator = _layer_op(layer, (inp.int() - inp.zero_point).double(), weight.int().double(),
                                    None if bias is None else bias.int().double())
            real_scale = inp.scale.double() * weight.scale.double().reshape(-1)[0] / out.scale.double()
            exact = torch.round(torch.clamp(accumulator * real_scale + out_type[0], low, high))
            ties += (exact != brevitas.double()).reshape(len(x), -1).sum(1).numpy()
    return ties


def brevitas_int_outputs(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).int().numpy().astype(np.int64)


def edgec_int_outputs(integer_model, x: np.ndarray) -> np.ndarray:
    """The reference executor's int8 outputs, sample by sample (the model has batch 1)."""
    executor = ReferenceExecutor(integer_model)
    name = int8_output_names(integer_model)[0]
    input_name = integer_model.graph.inputs[0].name
    rows = [executor.run({input_name: sample[None]}, keep_intermediates=True)[name] for sample in x]
    return np.concatenate(rows).astype(np.int64)


def export(net: torch.nn.Module, path: Path, batch: int) -> Path:
    """``net``'s QONNX export for inputs of ``batch`` samples."""
    with _quiet_exporter():
        export_qonnx(net, args=torch.zeros(batch, 1, 8, 8), export_path=str(path))
    return path


def output_scale(qonnx_path: Path) -> np.float32:
    """The scale of the Quant node producing the QONNX model's output."""
    model = onnx.load(str(qonnx_path))
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = next(n for n in model.graph.node if n.output[0] == model.graph.output[0].name)
    assert producer.op_type == "Quant", producer.op_type
    return np.float32(constants[producer.input[1]])


def qonnx_int_outputs(qonnx_path: Path, x: np.ndarray) -> np.ndarray:
    """qonnx's executor on the QONNX file (exported for ``len(x)`` samples), as integers."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    model = ModelWrapper(str(qonnx_path))
    result = execute_onnx(model, {model.graph.input[0].name: x})[model.graph.output[0].name]
    q = np.round(result.astype(np.float64) / np.float64(output_scale(qonnx_path)))
    return q.astype(np.int64)


def quantize(net: torch.nn.Module):
    """``edgec.quantize`` of the Brevitas module (batch 1), with no calibration data."""
    return edgec.quantize(net, example_inputs=torch.zeros(1, 1, 8, 8))
