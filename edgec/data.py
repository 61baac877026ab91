"""Input and calibration data: loading ``.npy``/``.npz`` files and splitting them into samples.

A *sample* is one dict ``{input name: array}`` with exactly the model's input shapes.
Accepted layouts for an input of shape ``S = [1, *rest]`` (batch 1):

* ``[N, *rest]`` -> N samples (the batch axis enumerates samples);
* ``[N, 1, *rest]`` -> N samples;
* ``S`` itself, or ``rest`` -> 1 sample.

A ``.npz`` maps input names to arrays (a single-input model may use any one key). Every
mismatch (shape, dtype, NaN/inf, sample counts) is an :class:`~edgec.errors.InputDataError`.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgec.errors import InputDataError


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: name, static shape and numpy dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype


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
        f"give [N, {', '.join(map(str, rest if rest is not None else shape))}] for N samples",
    )


def _check_dtype(array: np.ndarray, spec: InputSpec, what: str, allow_int8: bool) -> np.ndarray:
    if np.issubdtype(spec.dtype, np.floating):
        if np.issubdtype(array.dtype, np.floating):
            if not np.all(np.isfinite(array)):
                raise InputDataError(f"{what} for input '{spec.name}' contains NaN or infinity",
                                     "clean the data")
            return array.astype(spec.dtype)
        if allow_int8 and array.dtype == np.int8:
            return array
    elif array.dtype == spec.dtype:
        return array
    raise InputDataError(
        f"{what} for input '{spec.name}' is {array.dtype}, the model expects {spec.dtype}",
        f"convert (and scale) the data to {spec.dtype} before saving it",
    )


def split_samples(data, specs: Sequence[InputSpec], what: str, allow_int8: bool = False) -> list[dict[str, np.ndarray]]:
    """Split loaded data into per-sample input dicts (see the module docstring)."""
    if isinstance(data, dict):
        if len(specs) == 1 and len(data) == 1:
            data = next(iter(data.values()))
        else:
            missing = [s.name for s in specs if s.name not in data]
            if missing:
                raise InputDataError(f"{what} has no array for input(s) {missing}",
                                     f"save one array per input name: {[s.name for s in specs]}")
    per_input = {}
    for spec in specs:
        array = np.asarray(data if not isinstance(data, dict) else data[spec.name])
        if array.dtype == object or array.size == 0:
            raise InputDataError(f"{what} for input '{spec.name}' is empty or not numeric", "save a numeric array")
        array = _check_dtype(array, spec, what, allow_int8)
        per_input[spec.name] = _split(array, spec, what)
    counts = {len(v) for v in per_input.values()}
    if len(counts) != 1:
        raise InputDataError(f"{what} gives different sample counts per input: "
                             f"{ {k: len(v) for k, v in per_input.items()} }", "give every input N samples")
    count = counts.pop()
    return [{name: samples[i] for name, samples in per_input.items()} for i in range(count)]


def random_samples(specs: Sequence[InputSpec], count: int = 100, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """``count`` samples uniform in [0, 1) for every float input (calibration of last resort)."""
    rng = np.random.default_rng(seed)
    return [{s.name: rng.random(s.shape, dtype=np.float64).astype(s.dtype) for s in specs} for _ in range(count)]
