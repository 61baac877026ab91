"""The shared MLPerf Tiny float models: MACs, accuracy against onnxruntime, layer agreement.

Figures are printed (run with -s to see them) and asserted as the issue states them.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import edgec
from edgec.accuracy import accuracy_report
from edgec.cli import cli
from edgec.oracle import compare_layers

from conftest import SHARED_MODELS, shared_model, shared_samples


@pytest.mark.parametrize("key", sorted(SHARED_MODELS))
def test_inspect_reports_the_mlperf_mac_counts(key):
    path = shared_model(key)
    result = CliRunner().invoke(cli, ["inspect", str(path), "--json"])
    assert result.exit_code == 0, result.output
    macs = json.loads(result.output)["total_macs"]
    expected = SHARED_MODELS[key][1]
    print(f"{key}: {macs:,} MACs (MLPerf Tiny: {expected:,})")
    assert macs == expected


def _quantized(key, rng, rounding="double"):
    path = shared_model(key)
    float_model = edgec.load(path)
    name = float_model.graph.inputs[0].name
    calibration, evaluation = shared_samples(key, rng)
    calibration = [{name: x[None]} for x in calibration]
    evaluation = [{name: x[None]} for x in evaluation]
    return path, float_model, edgec.quantize(float_model, calibration, rounding=rounding), calibration, evaluation


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(SHARED_MODELS))
def test_sqnr_is_at_least_onnxruntime_qdq_minus_half_a_decibel(key, rng):
    path, float_model, int_model, calibration, evaluation = _quantized(key, rng)
    report = accuracy_report(key, path, float_model, int_model, calibration, evaluation, classifier=key != "ad")
    print(f"\n{report}")
    assert report.edgec_sqnr_db >= report.onnxruntime_qdq_sqnr_db - 0.5
    assert report.worst_layer_max_diff <= 1
    if report.top1_vs_twin is not None:
        assert report.top1_vs_twin >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(SHARED_MODELS))
def test_layers_agree_with_onnxruntime_qdq_on_the_same_int8_inputs(key, rng):
    """Single rounding rounds once, like onnxruntime: >= 99 % identical in every layer.

    With TFLM's default double rounding the first rounding (to 2^-right_shift of an output
    step) can push a value across a rounding boundary: still never more than 1 LSB, and
    >= 99 % identical over the whole model (ResNet-8's 10-output FC is the worst layer).
    """
    for rounding in ("single", "double"):
        _, float_model, int_model, _, evaluation = _quantized(key, rng, rounding)
        layers = compare_layers(float_model, int_model, evaluation)
        for layer in layers:
            print(f"{key} {rounding:6s} {layer.op:16s} {layer.elements:9d} {layer.identical_fraction:.4%} "
                  f"max {layer.max_abs_diff}")
        assert layers and all(layer.max_abs_diff <= 1 for layer in layers)
        if rounding == "single":
            assert all(layer.identical_fraction >= 0.99 for layer in layers)
        else:
            total = sum(layer.elements for layer in layers)
            assert sum(layer.identical for layer in layers) / total >= 0.99
            assert all(layer.identical_fraction >= 0.98 for layer in layers)
