"""Input and calibration data: loading ``.npy``/``.npz`` files and splitting them into samples.

A *sample* is one dict ``{input name: array}`` with exactly the model's input shapes.
Accepted layouts for an input of shape ``S = [1, *rest]`` (batch 1):

* ``[N, *rest]`` -> N samples (the batch axis enumerates samples);
* ``[N, 1, *rest]`` -> N samples;
* ``S`` itself, or ``rest`` -> 1 sample.

A ``.npz`` (or a dict) maps input names to arrays; every key must name an input, except
that a single-input model also takes the one unnamed array ``arr_0`` that
``numpy.savez(path, array)`` writes. A list of such dicts is taken sample group by sample
group. Float data for a float input is converted to the input's type (float64 with a
warning: precision is lost); float data for an int8 input that records its scale and zero
point (a TFLite model's) is quantized exactly as the reference ``Quantize``. Every mismatch
(shape, dtype, NaN/inf, keys, sample counts) is an :class:`~edgec.errors.InputDataError`;
calibration data with fewer than :data:`FEW_CALIBRATION_SAMPLES` samples is accepted with
one warning.
"""

from __future__ import annotations

import dataclasses
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgec.errors import EdgecWarning, InputDataError
from edgec.passes.qparams import QParams
from edgec.reference import KERNELS

#: Calibration on fewer samples than this is accepted with a warning.
FEW_CALIBRATION_SAMPLES = 10
#: The key ``numpy.savez`` gives an array saved without a name.
UNNAMED_KEY = "arr_0"


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: name, static shape, numpy dtype and, for an int8 input, its
    quantization (float data for it is quantized with it)."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    quantization: QParams | None = None


def load_arrays(path: str | Path, what: str) -> dict[str, np.ndarray] | np.ndarray:
    """Read a ``.npy`` (one array) or ``.npz`` (named arrays) file."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{what} file '{path}' does not exist", "check the path")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise InputDataError(f"{what} file '{path}' is not a .npy/.npz array file ({error})",
                             "save the data with numpy.save or numpy.savez") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    return loaded


def quantize_float(array: np.ndarray, qparams: QParams, rounding: str = "half_away") -> np.ndarray:
    """``array`` as int8, exactly as the reference ``Quantize`` computes it: a float32 division
    by the scale, rounded as ``rounding`` says (:data:`edgec.ops.QUANTIZE_ROUNDINGS`; a
    ``Quantize`` node's attribute), plus the zero point, saturated to ``qparams``' type."""
    attrs = {"scale": qparams.scale, "zero_point": qparams.zero_point, "min": qparams.int_type.min,
             "max": qparams.int_type.max, "rounding": rounding}
    return KERNELS["Quantize"](attrs, "double", array)


def _batched(spec: InputSpec) -> str:
    """The layout of N samples for ``spec``, e.g. ``[N, 3, 32, 32]``."""
    rest = spec.shape[1:] if spec.shape and spec.shape[0] == 1 else spec.shape
    return f"[{', '.join(['N', *map(str, rest)])}]"


def _split(array: np.ndarray, spec: InputSpec, what: str) -> list[np.ndarray]:
    shape = spec.shape
    if array.shape == shape:
        return [array]
    rest = shape[1:] if shape and shape[0] == 1 else None
    if rest is not None and array.shape == rest:
        return [array.reshape(shape)]
    if rest is not None and array.ndim == len(shape) and array.shape[1:] == rest:
        return [array[i:i + 1] for i in range(array.shape[0])]
    if array.ndim == len(shape) + 1 and array.shape[1:] == shape:
        return [array[i] for i in range(array.shape[0])]
    raise InputDataError(
        f"{what} for input '{spec.name}' has shape {list(array.shape)}, the model expects {list(shape)}",
        f"give {_batched(spec)} for N samples",
    )


def _check_dtype(array: np.ndarray, spec: InputSpec, what: str, allow_int8: bool) -> np.ndarray:
    float_input = np.issubdtype(spec.dtype, np.floating)
    if np.issubdtype(array.dtype, np.floating) and (float_input or spec.quantization is not None):
        if not np.all(np.isfinite(array)):
            raise InputDataError(f"{what} for input '{spec.name}' contains NaN or infinity", "clean the data")
        return array.astype(spec.dtype) if float_input else quantize_float(array, spec.quantization)
    if array.dtype == spec.dtype or (float_input and allow_int8 and array.dtype == np.int8):
        return array
    raise InputDataError(
        f"{what} for input '{spec.name}' is {array.dtype}, the model expects {spec.dtype}",
        f"convert (and scale) the data to {spec.dtype} before saving it",
    )


def _by_input(data, specs: Sequence[InputSpec], what: str) -> dict[str, np.ndarray]:
    """One array per input from an array or a dict of arrays (see the module docstring)."""
    names = [spec.name for spec in specs]
    if not isinstance(data, dict):
        if len(specs) != 1:
            raise InputDataError(f"{what} is one array, the model has inputs {names}",
                                 "save one array per input name with numpy.savez")
        return {names[0]: data}
    if len(specs) == 1 and list(data) == [UNNAMED_KEY]:
        return {names[0]: data[UNNAMED_KEY]}
    unknown = [key for key in data if key not in names]
    missing = [name for name in names if name not in data]
    if unknown or missing:
        found = f"has arrays {list(data)}" + (f", naming no input: {unknown}" if unknown else "")
        raise InputDataError(f"{what} {found}; the model's inputs are {names}",
                             f"save one array per input name: numpy.savez(path, {names[0]}=...)")
    return {name: data[name] for name in names}


def _split_group(data, specs: Sequence[InputSpec], what: str, allow_int8: bool) -> tuple[list[dict], str | None]:
    """The samples of one array or dict, and the type float64 data was converted to (or None)."""
    per_input, converted = {}, None
    for spec, array in zip(specs, _by_input(data, specs, what).values()):
        array = np.asarray(array)
        if array.dtype == object or array.size == 0:
            raise InputDataError(f"{what} for input '{spec.name}' is empty or not numeric", "save a numeric array")
        if array.dtype == np.float64 and spec.dtype != np.float64:
            converted = "float32" if spec.quantization is not None else str(spec.dtype)
        per_input[spec.name] = _split(_check_dtype(array, spec, what, allow_int8), spec, what)
    counts = {len(v) for v in per_input.values()}
    if len(counts) != 1:
        raise InputDataError(f"{what} gives different sample counts per input: "
                             f"{ {k: len(v) for k, v in per_input.items()} }", "give every input N samples")
    count = counts.pop()
    return [{name: samples[i] for name, samples in per_input.items()} for i in range(count)], converted


def split_samples(data, specs: Sequence[InputSpec], what: str, allow_int8: bool = False) -> list[dict[str, np.ndarray]]:
    """Split loaded data (an array, a dict of arrays, or a list of dicts) into per-sample
    input dicts (see the module docstring); warns once if float64 data was converted."""
    groups = data if isinstance(data, list | tuple) and data and isinstance(data[0], dict) else [data]
    samples, converted = [], None
    for group in groups:
        group_samples, group_converted = _split_group(group, specs, what, allow_int8)
        samples += group_samples
        converted = converted or group_converted
    if converted:
        warnings.warn(f"{what}: converted float64 to {converted} (the model's input precision)", EdgecWarning,
                      stacklevel=2)
    return samples


def split_calibration(data, specs: Sequence[InputSpec]) -> list[dict[str, np.ndarray]]:
    """:func:`split_samples` for calibration data, warning once when it holds fewer than
    :data:`FEW_CALIBRATION_SAMPLES` samples (a ``[3, 32, 32]`` array is one sample)."""
    samples = split_samples(data, specs, "calibration data")
    if len(samples) < FEW_CALIBRATION_SAMPLES:
        layouts = ", ".join(f"{_batched(spec)} for '{spec.name}'" for spec in specs) if len(specs) > 1 \
            else _batched(specs[0])
        plural = "" if len(samples) == 1 else "s"
        warnings.warn(f"calibration data taken as {len(samples)} sample{plural}; for N samples give {layouts} "
                      f"(fewer than {FEW_CALIBRATION_SAMPLES} rarely cover the activation ranges of real inputs)",
                      EdgecWarning, stacklevel=2)
    return samples


def random_samples(specs: Sequence[InputSpec], count: int = 100, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``count`` samples uniform in [0, 1) for every float input (calibration of last resort)."""
    rng = np.random.default_rng(seed)
    return [{s.name: rng.random(s.shape, dtype=np.float64).astype(s.dtype) for s in specs} for _ in range(count)]
