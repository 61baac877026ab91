"""Delta-Aware Training (edgec.train.delta_aware, edgec train --delta): a few steps each, and
the promise they keep: the trained model compiles with its scheme and zero error."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import edgec
from edgec.delta import DeltaScheme
from edgec.errors import EdgecError
from edgec.passes.delta_encode import read_report

from conftest import invoke, require_torch

torch = require_torch()

from edgec.train import delta_aware  # noqa: E402  (needs torch, checked above)
from edgec.train.files import loader  # noqa: E402

NETWORK_SOURCE = '''
import torch


def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(),
        torch.nn.Conv2d(6, 6, 3, groups=6), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(6 * 6 * 6, 5))
'''


@pytest.fixture
def network(tmp_path, monkeypatch):
    (tmp_path / "dat_net.py").write_text(NETWORK_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import dat_net

    return dat_net.build()


@pytest.fixture
def data(rng):
    x = rng.random((96, 1, 8, 8), dtype=np.float32)
    return x, (x[:, 0, :4].sum(axis=(1, 2)) * 5 / 16).astype(np.int64) % 5


@pytest.mark.parametrize("scheme,scale", [
    (DeltaScheme(4, "closed-loop", "channel"), "fit"), (DeltaScheme(3, "fixed", "block", 5), "int8"),
    (DeltaScheme(4, "consecutive", "tensor"), "pow2"), (DeltaScheme(2, "fixed", "tensor"), "fit"),
], ids=lambda p: p.describe() if isinstance(p, DeltaScheme) else p)
def test_trained_model_encodes_exactly(network, data, scheme, scale):
    x, y = data
    result = delta_aware(network, loader(x, y, 32, shuffle=True), scheme=scheme, epochs=1, scale=scale, max_steps=3,
                         test_loader=loader(x, y, 32, shuffle=False))
    assert [record["epoch"] for record in result.log] == [1] and 0 <= result.log[0]["test_accuracy"] <= 1
    assert [layer["layer"] for layer in result.layers] and not result.module.training
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = edgec.quantize(result.module, x[:16], example_inputs=(torch.from_numpy(x[:1]),), delta=scheme)
    report = read_report(graph)
    assert {layer.op_type for layer in report} == {"Conv", "DepthwiseConv", "FullyConnected"}
    assert all(layer.encoded and layer.changed == 0 for layer in report)
    assert [layer.stored_bits for layer in report] == [layer["stored_bits"] for layer in result.layers]


def test_caller_module_is_untouched_and_training_moves_weights(network, data):
    x, y = data
    before = {name: p.detach().clone() for name, p in network.named_parameters()}
    result = delta_aware(network, loader(x, y, 32, shuffle=True), epochs=2, max_steps=4)
    assert all(torch.equal(before[name], p) for name, p in network.named_parameters())
    assert len(result.log) == 2 or result.log[-1]["epoch"] == 2


def test_errors(network, data):
    x, y = data
    grouped = torch.nn.Sequential(torch.nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(EdgecError, match="grouped convolution"):
        delta_aware(grouped, [], epochs=1)
    with pytest.raises(EdgecError, match="no Linear or Conv"):
        delta_aware(torch.nn.Sequential(torch.nn.ReLU()), [], epochs=1)
    with pytest.raises(EdgecError, match="unknown scale rule"):
        delta_aware(network, [], scale="max")
    after_pool = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2), torch.nn.BatchNorm2d(2))
    with pytest.raises(EdgecError, match="BatchNorm layer does not follow"):
        delta_aware(after_pool, [], epochs=1)


def test_cli_train_then_quantize_exactly(network, data, tmp_path, monkeypatch):
    x, y = data
    dataset = tmp_path / "data.npz"
    np.savez(dataset, x_train=x, y_train=y, x_test=x[:32], y_test=y[:32])
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "trained.onnx"
    result = invoke("train", "dat_net:build", "--delta", "--data", dataset, "-o", out, "--epochs", "1",
                    "--batch-size", "48", "--delta-scheme", "fixed", "--delta-scope", "block:4")
    assert result.exit_code == 0, result.output
    assert "epoch 1: loss" in result.output and "test accuracy" in result.output and "of int8" in result.output
    log = json.loads((tmp_path / "trained.train.json").read_text())
    assert log["scheme"] == {"bits": 4, "scheme": "fixed", "scope": "block:4"} and len(log["epochs"]) == 1
    np.save(tmp_path / "calib.npy", x[:16])
    quantized = invoke("quantize", out, "--calib", tmp_path / "calib.npy", "-o", tmp_path / "q.onnx")
    assert quantized.exit_code == 0, quantized.output
    assert "warning" not in quantized.output and "delta-encoded weights" in quantized.output
    assert all(layer.changed == 0 and layer.encoded for layer in read_report(edgec.load(tmp_path / "q.onnx")))


@pytest.mark.parametrize("arrays,message", [({"x": np.zeros((2, 1, 8, 8))}, "no x_train and y_train"),
                                            ({"x_train": np.zeros((2, 1, 8, 8)), "y_train": np.zeros(3, int)},
                                             "different lengths"),
                                            ({"x_train": np.zeros((2, 1, 8, 8)), "y_train": np.zeros(2)},
                                             "not class labels")])
def test_cli_train_bad_dataset(network, tmp_path, monkeypatch, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "dat_net:build", "--delta", "--data", tmp_path / "bad.npz", "-o", tmp_path / "t.onnx")
    assert result.exit_code != 0 and message in result.output and not (tmp_path / "t.onnx").exists()


def test_cli_train_needs_a_kind(network, tmp_path):
    result = invoke("train", "dat_net:build", "--data", tmp_path / "none.npz", "-o", tmp_path / "t.onnx")
    assert result.exit_code != 0 and "--delta" in result.output
