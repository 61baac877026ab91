"""Shared fixtures: where the shared MLPerf Tiny models live, and small model builders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[1]
#: The workplace's shared data (models, goldens); override with EDGEC_SHARED.
SHARED = Path(os.environ.get("EDGEC_SHARED", REPO.parent / "shared"))
SHARED_MODELS = {
    "vww": ("vww_mobilenetv1_025.onnx", 7_489_664),
    "resnet8": ("ic_resnet8.onnx", 12_501_632),
    "ad": ("ad_autoencoder.onnx", 264_192),
}


def shared_model(key: str) -> Path:
    """Path of a shared ONNX model; the test is skipped, saying why, when it is absent."""
    path = SHARED / "models" / SHARED_MODELS[key][0]
    if not path.exists():
        pytest.skip(f"shared model {path} is not available (set EDGEC_SHARED to the shared/ directory)")
    return path


def shared_samples(key: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, evaluation) inputs as the issue prescribes: uniform [0, 1] images; AD's 40 real windows."""
    if key == "ad":
        path = SHARED / "models" / "ad_autoencoder_samples.npy"
        if not path.exists():
            pytest.skip(f"{path} is not available")
        windows = np.load(path).astype(np.float32)
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


def tensor_info(name: str, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
