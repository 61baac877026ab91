"""PyTorch models through edgec: awkward shapes, a trained digits classifier, CLI specs."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

import edgec
from edgec.accuracy import sqnr_db
from edgec.cli import cli
from edgec.oracle import compare_layers

from conftest import require_torch

torch = require_torch()

from digits_model import build, images  # noqa: E402  (needs torch)
from torch_models import AWKWARD_MODELS, awkward_module  # noqa: E402  (needs torch)


@pytest.mark.parametrize("factory,shape", AWKWARD_MODELS)
def test_awkward_models_quantize_and_agree_with_onnxruntime(factory, shape, rng):
    module = awkward_module(factory)
    calib = rng.random((32, *shape[1:]), dtype=np.float32)
    example = torch.from_numpy(calib[:1])
    float_model = edgec.load(module, example_inputs=(example,))
    integer = edgec.quantize(float_model, calib)
    evaluation = rng.random((16, *shape[1:]), dtype=np.float32)
    samples = [{float_model.graph.inputs[0].name: e[None]} for e in evaluation]
    layers = compare_layers(float_model, integer, samples)
    assert len(layers) >= 6 and all(layer.max_abs_diff <= 1 for layer in layers)
    with torch.no_grad():
        reference = np.concatenate([module(torch.from_numpy(e[None])).numpy() for e in evaluation])
    ours = np.concatenate([list(o.values())[0] for o in edgec.run(integer, evaluation)])
    print(f"{factory.__name__}: SQNR {sqnr_db(reference, ours):.1f} dB over {len(layers)} layers")
    assert sqnr_db(reference, ours) > 25.0


def test_a_digits_classifier_keeps_its_accuracy_after_int8_quantization():
    model = build()  # examples/digits_model.py: trained on the first 1200 images
    x, labels = images()
    test_x, test_y = x[1200:], labels[1200:]
    with torch.no_grad():
        float_accuracy = float((model(torch.from_numpy(test_x)).argmax(1).numpy() == test_y).mean())
    integer = edgec.quantize(model, x[:100], example_inputs=(torch.from_numpy(x[:1]),))
    predictions = np.array([list(o.values())[0].argmax() for o in edgec.run(integer, test_x)])
    int8_accuracy = float((predictions == test_y).mean())
    print(f"digits: float {float_accuracy:.2%}, int8 {int8_accuracy:.2%} on {len(test_y)} test images")
    assert float_accuracy > 0.9
    assert int8_accuracy >= float_accuracy - 0.01


def test_cli_takes_a_module_factory_spec(tmp_path, monkeypatch, rng):
    (tmp_path / "tiny_models.py").write_text(textwrap.dedent("""
        import torch

        def build():
            return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                       torch.nn.Linear(4 * 6 * 6, 2))
    """))
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "calib.npy", rng.random((4, 3, 8, 8), dtype=np.float32))
    runner = CliRunner()
    result = runner.invoke(cli, ["inspect", "tiny_models:build", "--input-shape", "1,3,8,8", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_macs"] == 4 * 6 * 6 * 27 + 2 * 144
    result = runner.invoke(cli, ["quantize", "tiny_models:build", "--input-shape", "1,3,8,8",
                                 "--calib", "calib.npy", "-o", "tiny.onnx"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["inspect", "tiny_models:build"])
    assert result.exit_code == 2 and "example inputs" in result.stderr
