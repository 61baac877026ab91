"""Shared fixtures and helpers: where the shared MLPerf Tiny models live, small model
builders, the command line, and skip markers for optional tools."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

import edgec
from edgec.api import input_specs, int8_output_names
from edgec.cli import cli
from edgec.reference import ReferenceExecutor

from tflite_builder import TfliteBuilder, options, schema

REPO = Path(__file__).resolve().parents[1]
#: The examples are importable (``from digits_model import build``) from the tests.
sys.path.insert(0, str(REPO / "examples"))
#: The workplace's shared data (models, goldens); override with EDGEC_SHARED.
SHARED = Path(os.environ.get("EDGEC_SHARED", REPO.parent / "shared"))
SHARED_MODELS = {
    "vww": ("vww_mobilenetv1_025.onnx", 7_489_664),
    "resnet8": ("ic_resnet8.onnx", 12_501_632),
    "ad": ("ad_autoencoder.onnx", 264_192),
}


TFLITE_MODELS = {
    "kws": ("kws_dscnn_int8", 2_656_768),
    "vww": ("vww_mobilenetv1_025_int8", 7_489_664),
    "resnet8": ("ic_resnet8_int8", 12_501_632),
    "ad": ("ad_autoencoder_int8", 264_192),
}


def shared_file(relative: str) -> Path:
    """A file under the shared directory; the test is skipped, saying why, when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"shared file {path} is not available (set EDGEC_SHARED to the shared/ directory)")
    return path


def shared_model(key: str) -> Path:
    """Path of a shared ONNX model; the test is skipped, saying why, when it is absent."""
    return shared_file(f"models/{SHARED_MODELS[key][0]}")


def quantized_shared_model(key: str, seed: int) -> ir.Model:
    """A shared ONNX model quantized on 20 uniform [0, 1) samples drawn with ``seed``."""
    float_model = edgec.load(shared_model(key))
    shape = input_specs(float_model)[0].shape
    calibration = np.random.default_rng(seed).random((20, *shape[1:]), dtype=np.float32)
    return edgec.quantize(float_model, calibration)


def tflite_model_path(key: str) -> Path:
    """Path of a shared int8 TFLite model; skipped, saying why, when it is absent."""
    return shared_file(f"models/tflite/{TFLITE_MODELS[key][0]}.tflite")


def tflm_golden(key: str) -> np.lib.npyio.NpzFile:
    """TFLM + CMSIS-NN's input, outputs and intermediate tensors for a shared TFLite model."""
    return np.load(shared_file(f"benchmarks/tflm_golden/{TFLITE_MODELS[key][0]}.npz"))


def shared_samples(key: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, evaluation) inputs as the issue prescribes: uniform [0, 1] images; AD's 40 real windows."""
    if key == "ad":
        windows = np.load(shared_file("models/ad_autoencoder_samples.npy")).astype(np.float32)
        return windows[:20], windows[20:]
    shape = (3, 96, 96) if key == "vww" else (3, 32, 32)
    return rng.random((100, *shape), dtype=np.float32), rng.random((100, *shape), dtype=np.float32)


def make_model(nodes, inputs, outputs, initializers, opset: int = 13) -> onnx.ModelProto:
    """An ONNX model from helper-made parts; initializers given as ``{name: array}``."""
    graph = helper.make_graph(
        nodes, "test", inputs, outputs,
        initializer=[numpy_helper.from_array(np.asarray(a), name) for name, a in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def float_model_error(integer, model: onnx.ModelProto, samples) -> float:
    """The largest difference between the integer model's output ``y`` and onnxruntime's float
    one over ``samples`` of input ``x`` (an error if their shapes differ)."""
    session = ort.InferenceSession(model.SerializeToString())
    worst = 0.0
    for x in samples:
        ours, theirs = edgec.run(integer, {"x": x})[0]["y"], session.run(None, {"x": x})[0]
        assert ours.shape == theirs.shape
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return worst


def tensor_info(name: str, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def pool_cnn(in_channels: int = 1, flatten_spatial: int = 2) -> onnx.ModelProto:
    """x[1,C,8,8] -> Conv 3x3 pad 1 (4) -> Relu -> MaxPool 2 -> Conv (6; its kernel leaves
    ``flatten_spatial`` x ``flatten_spatial`` positions) -> Relu -> Flatten -> Gemm (5), float,
    seed 11 (the FPGA tests' small CNN)."""
    rng = np.random.default_rng(11)
    k2 = 5 - flatten_spatial
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2"),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    inits = {"w1": rng.normal(size=(4, in_channels, 3, 3)), "b1": rng.normal(size=4) * 0.1,
             "w2": rng.normal(size=(6, 4, k2, k2)), "b2": rng.normal(size=6) * 0.1,
             "fw": rng.normal(size=(5, 6 * flatten_spatial ** 2)), "fb": rng.normal(size=5) * 0.1}
    return make_model(nodes, [tensor_info("x", [1, in_channels, 8, 8])], [tensor_info("y", [1, 5])],
                      {key: value.astype(np.float32) for key, value in inits.items()})


needs_toolchain = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="arm-none-eabi-gcc and qemu-system-arm are needed "
           "(sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")


def require_torch():
    """The torch module; the test is skipped, saying how to install it, when it is absent."""
    return pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")


def invoke(*args):
    """Run the ``edgec`` command line in-process on ``args`` (paths and numbers as strings)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def model_path(tmp_path, rng) -> Path:
    """:func:`small_conv_model` with batch 1, saved as ``model.onnx``."""
    path = tmp_path / "model.onnx"
    onnx.save(small_conv_model(rng, batch=1), path)
    return path


@pytest.fixture
def calib_path(tmp_path, rng) -> Path:
    """16 calibration samples for :func:`small_conv_model`, saved as ``calib.npy``."""
    path = tmp_path / "calib.npy"
    np.save(path, rng.random((16, 3, 8, 8), dtype=np.float32))
    return path


@pytest.fixture(scope="session")
def small_integer_model() -> ir.Model:
    """:func:`small_conv_model` with batch 1, quantized (shared by every test; do not modify)."""
    rng = np.random.default_rng(5)
    return edgec.quantize(small_conv_model(rng, batch=1), rng.random((16, 3, 8, 8), dtype=np.float32))


def small_conv_model(rng: np.random.Generator, batch="N", extra_nodes=(), opset: int = 13) -> onnx.ModelProto:
    """x[batch,3,8,8] -> Conv 3x3 (4) -> Relu -> GlobalAveragePool -> Flatten -> Gemm(2) -> y."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["g"], name="fc", transB=1),
        *extra_nodes,
    ]
    out = extra_nodes[-1].output[0] if extra_nodes else "g"
    inits = {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "b": rng.normal(size=4).astype(np.float32),
             "fw": rng.normal(size=(2, 4)).astype(np.float32), "fb": rng.normal(size=2).astype(np.float32)}
    return make_model(nodes, [tensor_info("x", [batch, 3, 8, 8])], [tensor_info(out, [batch, 2])], inits, opset)


def big_fc_model() -> onnx.ModelProto:
    """x[1,1024] -> MatMul (1100 outputs) -> y: 1.1 MB of int8 weights, over the Cortex-M3 part's 1 MB flash."""
    weights = np.random.default_rng(5).normal(size=(1024, 1100)).astype(np.float32)
    return make_model([helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
                      [tensor_info("x", [1, 1024])], [tensor_info("y", [1, 1100])], {"w": weights})


needs_host_compiler = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("make") is None,
                                         reason="gcc and make are needed (sudo apt-get install gcc make)")


def emit_project(model: ir.Model, out: Path, **kwargs) -> dict:
    """Write (without building) the cortex-m4 C project of an integer graph; its report."""
    from edgec.backends import cortex_m
    from edgec.target import get_target

    return cortex_m.compile_project(model, get_target("cortex-m4"), out, "model", emit_only=True, **kwargs)


def reference_int8_output(model, feed: dict) -> np.ndarray:
    """The reference executor's int8 output for one feed."""
    return ReferenceExecutor(model).run(feed, keep_intermediates=True)[int8_output_names(model)[0]]


def small_tflite_model(tmp_path):
    """An int8 TFLite model: x[1,5,5,2] -> depthwise conv -> fully connected -> y[1,6]."""
    rng = np.random.default_rng(3)
    b = TfliteBuilder()
    x = b.tensor([1, 5, 5, 2], scale=0.05, zero_point=1)
    w = b.tensor([1, 3, 3, 4], scale=[0.01, 0.02, 0.015, 0.03], zero_point=0, axis=3,
                 data=rng.integers(-127, 128, (1, 3, 3, 4)).astype(np.int8))
    bias = b.tensor([4], np.int32, data=rng.integers(-500, 500, 4).astype(np.int32))
    hidden = b.tensor([1, 3, 3, 4], scale=0.04, zero_point=-2)
    b.operator(schema.BuiltinOperator.DEPTHWISE_CONV_2D, [x, w, bias], [hidden],
               schema.BuiltinOptions.DepthwiseConv2DOptions,
               options(schema.DepthwiseConv2DOptionsT, padding=1, strideW=1, strideH=1, depthMultiplier=2,
                       dilationWFactor=1, dilationHFactor=1, fusedActivationFunction=1))
    fc_w = b.tensor([6, 36], scale=0.02, zero_point=0, data=rng.integers(-127, 128, (6, 36)).astype(np.int8))
    y = b.tensor([1, 6], scale=0.2, zero_point=3)
    b.operator(schema.BuiltinOperator.FULLY_CONNECTED, [hidden, fc_w, -1], [y],
               schema.BuiltinOptions.FullyConnectedOptions, schema.FullyConnectedOptionsT())
    path = tmp_path / "dw.tflite"
    path.write_bytes(b.build([x], [y]))
    return edgec.load(path)
