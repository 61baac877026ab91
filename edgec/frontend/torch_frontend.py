"""PyTorch frontend: ``torch.nn.Module`` -> ``onnx_ir.Model`` via ``torch.onnx.export``.

The module is exported in eval mode (its training flag is restored afterwards) with the
dynamo-based exporter, whose result is already an ``onnx_ir.Model``; the exporter's log lines
and prints are kept from the terminal. ``package.module:factory`` specs name a module or a
zero-argument callable returning one, importable from the current directory or ``sys.path``.

Nodes are named after the module that computes them (:func:`name_nodes_after_modules`), so
every layer name edgec shows (inspect, profile, report.json, the C comments) is a path the
user knows: ``features.0.0``, ``fc``. When the export fails, the module is run once on the
example inputs with plain PyTorch: an input it does not accept is reported as such, with the
shape its first layer takes.

A module holding Brevitas quantized layers (any submodule from the ``brevitas`` package) is
exported with Brevitas' own ``export_qonnx`` to a temporary QONNX file instead, which is read
and validated as an ONNX file is (:mod:`edgec.frontend.onnx_frontend`); its Quant nodes
carry the scales and widths (:class:`passes.absorb_qonnx.AbsorbQONNXPass`). That needs the
``qonnx`` extra (brevitas, qonnx, onnxoptimizer); an error names it when one is missing.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import logging
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import onnx_ir as ir

from edgec.control_flow import all_nodes
from edgec.errors import EdgecError, InputDataError, ModelLoadError, UnsupportedModelError, first_line
from edgec.frontend.onnx_frontend import import_validated, read_proto
from edgec.passes.absorb_qonnx import is_qonnx_node

#: Node metadata where the exporter records the module scopes of a node, outermost first,
#: ending with the operation itself: ``['', 'features', 'features.0', 'features.0.0', 'conv2d']``.
NAME_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
#: Packages of the ``qonnx`` extra, needed to export Brevitas modules.
QONNX_EXTRA_PACKAGES = ("brevitas", "qonnx", "onnxoptimizer")
QONNX_EXTRA_FIX = "pip install 'edgec[qonnx]' (brevitas, qonnx and onnxoptimizer)"


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
        missing_extra = (error.name or "").partition(".")[0] in QONNX_EXTRA_PACKAGES
        raise ModelLoadError(f"cannot import '{module_name}' for '{spec}': {error}",
                             QONNX_EXTRA_FIX if missing_extra else
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


def _root_cause(error: BaseException) -> BaseException:
    """The innermost exception ``error`` was raised from (the exporter wraps the real one)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def _first_layer(module):
    """``(path, layer)`` of the first convolution or linear layer of ``module`` (registration order)."""
    torch = _torch()
    layers = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)
    return next(((path, layer) for path, layer in module.named_modules() if isinstance(layer, layers)), (None, None))


def _input_shape_hint(module, shape: list[int]) -> str:
    """What to give instead of ``shape``: the shape the first conv/linear layer takes, when it does
    not take ``shape``."""
    torch = _torch()
    path, layer = _first_layer(module)
    if layer is None:
        return "give the input shape the module's forward takes (--input-shape; Python: example_inputs)"
    if isinstance(layer, torch.nn.Linear):
        takes = f"[..., {layer.in_features}]"
        fixed = [*shape[:-1], layer.in_features]
    else:
        spatial = {1: ["L"], 2: ["H", "W"], 3: ["D", "H", "W"]}[len(layer.kernel_size)]
        takes = f"[N, {layer.in_channels}, {', '.join(spatial)}]"
        fixed = ([shape[0], layer.in_channels, *shape[2:]] if len(shape) == len(spatial) + 2
                 else [1, layer.in_channels, *spatial])
    where = f"{f'its first layer {path!r}' if path else 'the module'} ({type(layer).__name__}) takes {takes}"
    if fixed == shape:
        return f"{where}, which this shape fits: a later layer needs another size (check the spatial size)"
    return f"{where}: give --input-shape {','.join(map(str, fixed))} (Python: example_inputs of that shape)"


def _check_accepts(module, example_inputs: tuple) -> None:
    """Run ``module`` on ``example_inputs``; an input it does not accept is an :class:`InputDataError`."""
    torch = _torch()
    try:
        with torch.no_grad():
            module(*example_inputs)
    except Exception as error:
        shapes = ", ".join(str(list(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__
                           for t in example_inputs)
        first = example_inputs[0]
        shape = list(first.shape) if isinstance(first, torch.Tensor) else []
        raise InputDataError(f"the module does not accept input shape {shapes}: {first_line(error)}",
                             _input_shape_hint(module, shape) if shape else "check the example inputs") from None


@contextlib.contextmanager
def _quiet_exporter():
    """Keep the exporter's log records (``E1202 ...`` lines), prints and warnings from the terminal."""
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with (warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()),
              contextlib.redirect_stderr(io.StringIO())):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(disabled)


def _scopes(node: ir.Node) -> list[str]:
    """The module paths of ``node``'s name scopes, outermost first (:data:`NAME_SCOPES_KEY`)."""
    try:
        scopes = ast.literal_eval(node.metadata_props.get(NAME_SCOPES_KEY, "[]"))
    except (ValueError, SyntaxError):
        return []
    return [scope for scope in scopes[:-1] if isinstance(scope, str) and scope]


def _module_path(node: ir.Node) -> str | None:
    """The path of the module that computes ``node``, or ``None`` (see :func:`name_nodes_after_modules`)."""
    if is_qonnx_node(node):
        modules = _scopes(node)
        return modules[-1].removesuffix(".export_handler") if modules else None
    for value in node.inputs:
        if value is not None and value.is_initializer() and "." in value.name:
            return value.name.rpartition(".")[0]
    modules = _scopes(node)
    return modules[-1] if modules else None


def name_nodes_after_modules(model: ir.Model) -> None:
    """Rename each node of an exported model after the module that computes it.

    A node reading a parameter (an initializer named ``path.weight``, ``path.bias`` ...) takes
    the path of the module owning it, so a Conv the exporter fused with its BatchNorm keeps
    the convolution's path; any other node takes the innermost module of its name scopes
    (:data:`NAME_SCOPES_KEY`); a QONNX quantizer node of a Brevitas export takes the path of
    its quantizer (``fc1.weight_quant``, ``relu1.act_quant``). Names are unique: the second node of one module is
    ``path_1``, and so on. A node outside every submodule (a function applied in the top
    module's ``forward``) keeps the exporter's name. Nodes inside branches (``If``
    subgraphs) are named the same way.
    """
    paths = [(node, _module_path(node)) for node in all_nodes(model.graph)]
    taken = {node.name for node, path in paths if path is None}
    for node, path in paths:
        if path is None:
            continue
        name, count = path, 0
        while name in taken:
            count += 1
            name = f"{path}_{count}"
        taken.add(name)
        node.name = name


def export_module(module, example_inputs) -> ir.Model:
    """Export ``module`` called on ``example_inputs`` (a tensor or tuple of tensors); see the module docstring."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"expected a torch.nn.Module, got {type(module).__name__}", "pass the model object")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    if not example_inputs:
        raise UnsupportedModelError("no example inputs given for the PyTorch export",
                                    "pass example_inputs (Python) or --input-shape (CLI)")
    if is_brevitas_module(module):
        return export_brevitas(module, example_inputs)
    was_training = module.training
    module.eval()
    try:
        with _quiet_exporter():
            program = torch.onnx.export(module, example_inputs, dynamo=True, verbose=False, optimize=True)
    except Exception as error:
        _check_accepts(module, example_inputs)
        raise UnsupportedModelError(f"torch.onnx.export failed: {first_line(_root_cause(error))}",
                                    "make the module exportable (see the torch.onnx troubleshooting docs)") from None
    finally:
        module.train(was_training)
    name_nodes_after_modules(program.model)
    return program.model


def is_brevitas_module(module) -> bool:
    """True when ``module`` or one of its submodules is a Brevitas layer (class from ``brevitas``)."""
    return any(type(m).__module__.partition(".")[0] == "brevitas" for m in module.modules())


def export_brevitas(module, example_inputs: tuple) -> ir.Model:
    """Export a Brevitas ``module`` with ``brevitas.export.export_qonnx`` (eval mode, training
    flag restored) and import the QONNX file as an ONNX file is; nodes named after modules."""
    try:
        import onnxoptimizer  # noqa: F401 (export_qonnx needs it, and fails late without it)
        from brevitas.export import export_qonnx
    except ImportError as error:
        raise EdgecError(f"exporting a Brevitas model needs {error.name or 'brevitas'}, which is not installed",
                         QONNX_EXTRA_FIX) from None
    was_training = module.training
    module.eval()
    with tempfile.TemporaryDirectory(prefix="edgec-qonnx-") as directory:
        path = Path(directory) / "model.qonnx.onnx"
        try:
            with _quiet_exporter():
                export_qonnx(module, args=example_inputs, export_path=str(path))
        except Exception as error:
            _check_accepts(module, example_inputs)
            raise UnsupportedModelError(f"brevitas.export.export_qonnx failed: {first_line(_root_cause(error))}",
                                        "make the module exportable (see Brevitas' export documentation)") from None
        finally:
            module.train(was_training)
        model = import_validated(read_proto(path), type(module).__name__)
    name_nodes_after_modules(model)
    return model
