"""Accuracy of an integer graph against the float model and against onnxruntime's own int8.

* :func:`sqnr_db`: signal-to-quantization-noise ratio of outputs against float references.
* :func:`float_outputs`: the canonical float model run by onnxruntime (the float oracle).
* :func:`onnxruntime_qdq_outputs`: the same model quantized by ``onnxruntime.quantization.
  quantize_static`` (QDQ, per-channel int8 weights, int8 activations, MinMax) with the same
  calibration data: the baseline edgec's quantizer is held to.
* :func:`accuracy_report`: all of it for one model, as the issue's acceptance asks.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from edgec.api import int8_output_names
from edgec.frontend.onnx_frontend import upgrade_opset
from edgec.oracle import compare_layers, ort_session, run_twin
from edgec.reference import ReferenceExecutor


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """``10 log10(sum(ref^2) / sum((ref - test)^2))`` over all elements."""
    reference = np.asarray(reference, dtype=np.float64)
    noise = np.sum((reference - np.asarray(test, dtype=np.float64)) ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference**2) / noise))


def float_outputs(model: ir.Model, samples: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """First output of the float model for each sample, stacked on axis 0."""
    session = ort_session(ir.to_proto(model))
    return np.concatenate([session.run(None, sample)[0] for sample in samples])


class _Reader(CalibrationDataReader):
    def __init__(self, samples):
        self._samples = iter(samples)

    def get_next(self):
        return next(self._samples, None)


def onnxruntime_qdq_outputs(model_path: str | Path, calibration: Sequence[dict[str, np.ndarray]],
                            samples: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
    """Outputs of onnxruntime's own QDQ quantization of the model file (see the module docstring)."""
    proto = upgrade_opset(onnx.load(str(model_path)), str(model_path))
    with tempfile.TemporaryDirectory(prefix="edgec-qdq-") as tmp:
        float_path, qdq_path = Path(tmp) / "float.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(proto, float_path)
        quantize_static(str(float_path), str(qdq_path), _Reader(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax)
        session = ort_session(qdq_path.read_bytes())
    return np.concatenate([session.run(None, sample)[0] for sample in samples])


@dataclasses.dataclass(frozen=True)
class AccuracyReport:
    """One model's figures (dB, fractions, LSB)."""

    model: str
    edgec_sqnr_db: float
    onnxruntime_qdq_sqnr_db: float
    top1_vs_float: float | None  # None for models that are not classifiers
    top1_vs_twin: float | None
    max_output_diff_lsb: int
    worst_layer_identical: float
    worst_layer_max_diff: int
    layers: int


def _top1_agreement(a: np.ndarray, b: np.ndarray, count: int) -> float:
    return float(np.mean(a.reshape(count, -1).argmax(1) == b.reshape(count, -1).argmax(1)))


def accuracy_report(name: str, model_path: str | Path, float_model: ir.Model, int_model: ir.Model,
                    calibration: Sequence[dict[str, np.ndarray]], samples: Sequence[dict[str, np.ndarray]],
                    classifier: bool = True) -> AccuracyReport:
    """Every figure of :class:`AccuracyReport` for one model.

    Layer agreement aggregates all evaluation samples per layer; the twin is the QDQ model with edgec's own scales (:func:`edgec.oracle.qdq_twin`).
    """
    executor = ReferenceExecutor(int_model)
    output, int_output = executor.output_names[0], int8_output_names(int_model)[0]
    runs = [executor.run(s, keep_intermediates=True) for s in samples]
    ours = np.concatenate([run[output] for run in runs])
    ours_int = np.concatenate([run[int_output] for run in runs])
    reference = float_outputs(float_model, samples)
    baseline = onnxruntime_qdq_outputs(model_path, calibration, samples)
    twin = run_twin(float_model, int_model, list(samples))[output]
    layers = compare_layers(float_model, int_model, list(samples))
    return AccuracyReport(
        model=name,
        edgec_sqnr_db=sqnr_db(reference, ours),
        onnxruntime_qdq_sqnr_db=sqnr_db(reference, baseline),
        top1_vs_float=_top1_agreement(reference, ours, len(samples)) if classifier else None,
        top1_vs_twin=_top1_agreement(twin, ours_int, len(samples)) if classifier else None,
        max_output_diff_lsb=int(np.abs(twin.astype(np.int32) - ours_int.astype(np.int32)).max()),
        worst_layer_identical=min(layer.identical_fraction for layer in layers),
        worst_layer_max_diff=max(layer.max_abs_diff for layer in layers),
        layers=len(layers),
    )


