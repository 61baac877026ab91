"""Calibration: the observed range of every float tensor, through onnxruntime's calibrators.

:func:`calibrate` runs the canonical float model on the samples with
``onnxruntime.quantization``'s ``MinMax`` (default), ``Percentile`` or ``Entropy``
calibrator and returns ``{tensor name: (min, max)}`` for every float tensor of the graph,
every range finite; in a graph that branches, each branch's tensors over the samples routed
into it (:mod:`edgec.calibration_branches`). Where the model makes NaN or infinite activations (finite but huge
weights overflow float32), the error names the first such tensor in topological order and
the first sample that makes it. The calibrators' progress prints and onnxruntime's warning
log lines are kept off the terminal.
"""

from __future__ import annotations

import contextlib
import io
import math
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state
from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod, create_calibrator

from edgec.calibration_branches import calibrate_branches
from edgec.control_flow import has_control_flow
from edgec.errors import InputDataError, ModelLoadError
from edgec.oracle import ORT_LOG_SEVERITY, ort_session

METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "percentile": CalibrationMethod.Percentile,
    "entropy": CalibrationMethod.Entropy,
}
_EXTRA_OPTIONS = {
    "minmax": {},
    "percentile": {"percentile": 99.999, "num_bins": 2048},
    "entropy": {"num_bins": 512, "num_quantized_bins": 128},
}


#: What onnxruntime raises when it cannot load or run a model.
_ORT_ERRORS = (ort_state.Fail, ort_state.InvalidArgument, ort_state.InvalidGraph, ort_state.NotImplemented,
               ort_state.RuntimeException)


class _SampleReader(CalibrationDataReader):
    def __init__(self, samples: Sequence[dict[str, np.ndarray]], advance: Callable[[], None] | None) -> None:
        self._samples = iter(samples)
        self._advance = advance

    def get_next(self):
        sample = next(self._samples, None)
        if sample is not None and self._advance is not None:
            self._advance()
        return sample


def _raise_if_non_finite(model: ir.Model, samples: Sequence[dict[str, np.ndarray]]) -> None:
    """Raise an error naming the first tensor (in node order) and sample with a NaN/inf value, if any."""
    proto = ir.to_proto(model)
    produced = [(node, value) for node in model.graph for value in node.outputs
                if value.dtype in (ir.DataType.FLOAT, ir.DataType.FLOAT16)]
    declared = {output.name for output in proto.graph.output}
    proto.graph.output.extend(onnx.helper.make_tensor_value_info(value.name, value.dtype.value, None)
                              for _, value in produced if value.name not in declared)
    session = ort_session(proto)
    names = [value.name for _, value in produced]
    for index, sample in enumerate(samples):
        for (node, value), array in zip(produced, session.run(names, sample)):
            if not np.all(np.isfinite(array)):
                raise InputDataError(
                    f"calibration sample {index} makes tensor '{value.name}' (output of {node.op_type} node "
                    f"'{node.name}') NaN or infinite",
                    "check the weights feeding that node (finite but huge values overflow float32) and the "
                    "calibration data; edgec quantizes finite activations only")


def _collect(calibrator, samples, advance) -> dict[str, tuple[float, float]]:
    """Run ``calibrator`` quietly: its prints and numpy's NaN warnings stay off the terminal."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        calibrator.collect_data(_SampleReader(samples, advance))
        tensors = calibrator.compute_data()
    ranges = {}
    for name, data in tensors.data.items():
        low, high = data.range_value
        ranges[name] = (float(np.min(low)), float(np.max(high)))
    return ranges


def calibrate(
    model: ir.Model,
    samples: Sequence[dict[str, np.ndarray]],
    method: str = "minmax",
    advance: Callable[[], None] | None = None,
) -> dict[str, tuple[float, float]]:
    """Ranges of every float tensor of ``model`` over ``samples`` (see the module docstring).

    ``advance`` is called once per sample consumed (for a progress display).
    """
    if method not in METHODS:
        raise InputDataError(f"unknown calibration method '{method}'", f"use one of {sorted(METHODS)}")
    if not samples:
        raise InputDataError("no calibration samples", "give --calib a file with at least one sample")
    ort.set_default_logger_severity(ORT_LOG_SEVERITY)  # the calibrators' own sessions log through it
    try:
        if has_control_flow(model.graph):
            return calibrate_branches(model, samples, lambda m, s, a: _calibrate_main_graph(m, s, method, a), advance)
        return _calibrate_main_graph(model, samples, method, advance)
    except _ORT_ERRORS as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(f"onnxruntime cannot run the float model on the calibration data: {message}",
                             "fix the node onnxruntime names (edgec calibrates by running the float model)") from None


def _calibrate_main_graph(model: ir.Model, samples: Sequence[dict[str, np.ndarray]], method: str,
                          advance: Callable[[], None] | None) -> dict[str, tuple[float, float]]:
    """Ranges of the float tensors of ``model``'s main graph (not of its branches)."""
    with tempfile.TemporaryDirectory(prefix="edgec-calib-") as tmp:
        model_path = Path(tmp) / "model.onnx"
        ir.save(model, model_path)
        calibrator = create_calibrator(
            model_path, op_types_to_calibrate=None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=METHODS[method], extra_options=_EXTRA_OPTIONS[method],
            providers=["CPUExecutionProvider"],
        )
        try:
            ranges = _collect(calibrator, samples, advance)
        except (ValueError, FloatingPointError):  # the histogram calibrators fail on NaN/inf
            _raise_if_non_finite(model, samples)
            raise
    if not all(math.isfinite(bound) for bounds in ranges.values() for bound in bounds):
        _raise_if_non_finite(model, samples)
    return ranges
