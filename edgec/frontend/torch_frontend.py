"""PyTorch frontend: ``torch.nn.Module`` -> ``onnx_ir.Model`` via ``torch.onnx.export``.

The module is exported in eval mode (its training flag is restored afterwards) with the
dynamo-based exporter, whose result is already an ``onnx_ir.Model``. ``package.module:factory``
specs name a module or a zero-argument callable returning one, importable from the current
directory or ``sys.path``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import onnx_ir as ir

from edgec.errors import EdgecError, ModelLoadError, UnsupportedModelError


def _torch():
    try:
        import torch
    except ImportError:
        raise EdgecError("PyTorch is not installed", "pip install torch==2.13.0") from None
    return torch


def is_module_spec(text: str) -> bool:
    """True for ``package.module:factory`` (and not an existing file path)."""
    return ":" in text and not Path(text).exists() and text.count(":") == 1 and "/" not in text.split(":")[0]


def load_module_spec(spec: str):
    """Import ``package.module:attribute``; call it if it is a factory. Returns an ``nn.Module``."""
    torch = _torch()
    module_name, _, attribute = spec.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ModelLoadError(f"cannot import '{module_name}' for '{spec}': {error}",
                             "run edgec from the directory that contains the package, or install it") from None
    if not hasattr(module, attribute):
        raise ModelLoadError(f"'{module_name}' has no attribute '{attribute}'", "check the spec package.module:factory")
    obj = getattr(module, attribute)
    if not isinstance(obj, torch.nn.Module) and callable(obj):
        obj = obj()
    if not isinstance(obj, torch.nn.Module):
        raise ModelLoadError(f"'{spec}' is not a torch.nn.Module or a factory returning one",
                             "point the spec at a module instance or a zero-argument function")
    return obj


def example_inputs_for(shapes: Sequence[Sequence[int]]) -> tuple:
    """Random float32 example inputs of the given shapes (for export only)."""
    torch = _torch()
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.rand(*shape, generator=generator) for shape in shapes)


def export_module(module, example_inputs) -> ir.Model:
    """Export ``module`` called on ``example_inputs`` (a tensor or tuple of tensors)."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"expected a torch.nn.Module, got {type(module).__name__}", "pass the model object")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    if not example_inputs:
        raise UnsupportedModelError("no example inputs given for the PyTorch export",
                                    "pass example_inputs (Python) or --input-shape (CLI)")
    was_training = module.training
    module.eval()
    exporter_log = logging.getLogger("torch.onnx")
    log_level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            program = torch.onnx.export(module, example_inputs, dynamo=True, verbose=False, optimize=True)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UnsupportedModelError(f"torch.onnx.export failed: {first}",
                                    "make the module exportable (see the torch.onnx troubleshooting docs)") from None
    finally:
        module.train(was_training)
        exporter_log.setLevel(log_level)
    return program.model
