"""Calibration: the observed range of every float tensor, through onnxruntime's calibrators.

:func:`calibrate` runs the canonical float model on the samples with
``onnxruntime.quantization``'s ``MinMax`` (default), ``Percentile`` or ``Entropy``
calibrator and returns ``{tensor name: (min, max)}`` for every float tensor of the graph.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx_ir as ir
from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod, create_calibrator

from edgec.errors import InputDataError

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


class _SampleReader(CalibrationDataReader):
    def __init__(self, samples: Sequence[dict[str, np.ndarray]], advance: Callable[[], None] | None) -> None:
        self._samples = iter(samples)
        self._advance = advance

    def get_next(self):
        sample = next(self._samples, None)
        if sample is not None and self._advance is not None:
            self._advance()
        return sample


def calibrate(
    model: ir.Model,
    samples: Sequence[dict[str, np.ndarray]],
    method: str = "minmax",
    advance: Callable[[], None] | None = None,
) -> dict[str, tuple[float, float]]:
    """Ranges of every float tensor of ``model`` over ``samples``.

    ``advance`` is called once per sample consumed (for a progress display).
    """
    if method not in METHODS:
        raise InputDataError(f"unknown calibration method '{method}'", f"use one of {sorted(METHODS)}")
    if not samples:
        raise InputDataError("no calibration samples", "give --calib a file with at least one sample")
    with tempfile.TemporaryDirectory(prefix="edgec-calib-") as tmp:
        model_path = Path(tmp) / "model.onnx"
        ir.save(model, model_path)
        calibrator = create_calibrator(
            model_path, op_types_to_calibrate=None, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=METHODS[method], extra_options=_EXTRA_OPTIONS[method],
            providers=["CPUExecutionProvider"],
        )
        calibrator.collect_data(_SampleReader(samples, advance))
        tensors = calibrator.compute_data()
    ranges = {}
    for name, data in tensors.data.items():
        low, high = data.range_value
        ranges[name] = (float(np.min(low)), float(np.max(high)))
    return ranges
