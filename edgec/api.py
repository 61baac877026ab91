"""edgec's Python API: load, quantize, run and summarize models.

Every entry point accepts a *model source*: a path to an ``.onnx`` or ``.tflite`` file, a
compiled project directory (its integer graph, ``model.onnx``), a ``package.module:factory``
spec, a ``torch.nn.Module`` (with ``example_inputs``), an ``onnx.ModelProto`` or an
``onnx_ir.Model``; :func:`run` takes the integer ones. Errors caused by the input are raised
as :class:`~edgec.errors.EdgecError` subclasses with a one-line message.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from edgec import ops
from edgec.backend import INTEGER_GRAPH, backend_for_target
from edgec.calibration import calibrate
from edgec.control_flow import all_nodes, is_branching
from edgec.data import InputSpec, load_arrays, random_samples, split_calibration, split_samples
from edgec.delta import DELTA_KEY, DeltaScheme
from edgec.errors import EdgecWarning, InputDataError, ModelLoadError, UnsupportedModelError
from edgec.fixedpoint import ROUNDING_MODES
from edgec.frontend.onnx_frontend import import_proto, import_validated, read_proto
from edgec.frontend.tflite_frontend import read_tflite_model
from edgec.frontend.torch_frontend import example_inputs_for, export_module, is_module_spec, load_module_spec
from edgec.inttype import ACTIVATION_BITS, VALUE_BITS
from edgec.passes.delta_encode import DeltaEncodePass
from edgec.passes.delta_encode import total as delta_total
from edgec.passes.input_layout import InputLayoutPass
from edgec.passes.qparams import get_qparams
from edgec.pipeline import canonical_passes, integer_passes, run_passes
from edgec.reference import ReferenceExecutor
from edgec.target import get_target

RANDOM_CALIBRATION = "random"
#: The file of a compiled project that holds its integer graph (written by every backend).
PROJECT_MODEL = "model.onnx"


def _is_torch_module(obj) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module)


def _import(source, example_inputs=None, input_shapes: Mapping[str, Sequence[int]] | None = None) -> ir.Model:
    if isinstance(source, ir.Model):
        return source
    if isinstance(source, onnx.ModelProto):
        return import_proto(source, "model", input_shapes)
    if _is_torch_module(source) or (isinstance(source, str) and is_module_spec(source)):
        module = load_module_spec(source) if isinstance(source, str) else source
        if example_inputs is None:
            if not input_shapes:
                raise UnsupportedModelError("a PyTorch model needs example inputs to be exported",
                                            "give example_inputs (Python) or --input-shape (CLI)")
            example_inputs = example_inputs_for(list(input_shapes.values()))
        return export_module(module, example_inputs)
    if isinstance(source, str | Path):
        path = project_model_path(source) if Path(source).is_dir() else Path(source)
        if path.suffix.lower() == ".tflite":
            return read_tflite_model(path)
        return import_validated(read_proto(path), str(path), input_shapes)
    raise UnsupportedModelError(f"cannot load a model from a {type(source).__name__}",
                                "pass a path, a torch.nn.Module, an onnx.ModelProto or an onnx_ir.Model")


def project_model_path(directory: str | Path) -> Path:
    """The integer graph of a compiled project (``DIR/model.onnx``, what its C code was generated from)."""
    path = Path(directory) / PROJECT_MODEL
    if not path.is_file():
        raise ModelLoadError(f"'{directory}' is a directory but not a compiled edgec project (no {PROJECT_MODEL})",
                             "pass a model file (.onnx, .tflite) or a directory written by edgec compile")
    return path


def load(source, *, example_inputs=None, input_shapes: Mapping[str, Sequence[int]] | None = None,
         dump_dir: str | Path | None = None) -> ir.Model:
    """Import ``source`` and canonicalize it (an edgec integer graph is returned as is)."""
    model = _import(source, example_inputs, input_shapes)
    if ops.is_integer_model(model):
        return model
    return run_passes(model, canonical_passes(), dump_dir)


def input_specs(model: ir.Model) -> list[InputSpec]:
    """Name, shape, dtype and (int8 and int16 inputs) quantization of each graph input."""
    return [InputSpec(v.name, tuple(int(d) for d in v.shape.numpy()), np.dtype(v.dtype.numpy()),
                      get_qparams(v) if v.dtype in (ir.DataType.INT8, ir.DataType.INT16) else None)
            for v in model.graph.inputs]


def _needs_calibration(model: ir.Model) -> bool:
    """True unless the model carries quantization from a QDQ export (its inputs have scales).

    A QDQ model missing a scale somewhere inside is reported by the quantizer, naming the tensor.
    """
    return any(get_qparams(v) is None for v in model.graph.inputs)


def input_samples(model: ir.Model, inputs) -> list[dict[str, np.ndarray]]:
    """``inputs`` (a .npy/.npz path, an array or a dict of arrays, float or int8) as one
    feed per sample for ``model``; an error names a wrong shape or dtype."""
    if isinstance(inputs, str | Path):
        inputs = load_arrays(inputs, "input data")
    return split_samples(inputs, input_specs(model), "input data", allow_int8=True)


def model_name(source) -> str:
    """A name for what ``source`` holds: a file's stem, or a module's class name."""
    return Path(source).stem if isinstance(source, str | Path) else type(source).__name__


def int8_output_names(model: ir.Model) -> list[str]:
    """For each graph output, the int8 tensor it is dequantized from (the output itself if int8)."""
    names = []
    for value in model.graph.outputs:
        producer = value.producer()
        names.append(producer.inputs[0].name if producer is not None and producer.op_type == "Dequantize"
                     else value.name)
    return names


def calibration_samples(model: ir.Model, calib) -> list[dict[str, np.ndarray]]:
    """Samples from ``calib``: a file path, ``"random"``, an array, a dict or a list of dicts."""
    specs = input_specs(model)
    if calib is None:
        return []
    if isinstance(calib, str) and calib == RANDOM_CALIBRATION:
        warnings.warn("calibrating on random data: activation ranges (and accuracy) will not match real inputs; "
                      "give representative samples with --calib FILE", EdgecWarning, stacklevel=3)
        return random_samples(specs)
    if isinstance(calib, str | Path):
        calib = load_arrays(calib, "calibration data")
    return split_calibration(calib, specs)


def quantize(source, calib=None, *, method: str = "minmax", rounding: str | None = None, example_inputs=None,
             input_shapes: Mapping[str, Sequence[int]] | None = None, dump_dir: str | Path | None = None,
             advance: Callable[[], None] | None = None, input_layout: str | None = None, weight_bits: int = 8,
             activation_bits: int = 8, delta: DeltaScheme | None = None) -> ir.Model:
    """Quantize ``source`` to an edgec integer graph.

    ``calib``: calibration data (see :func:`calibration_samples`); required unless the
    model is a QDQ model carrying every scale. ``method``: ``minmax``, ``percentile`` or
    ``entropy``. ``rounding``: a mode of :data:`edgec.fixedpoint.ROUNDING_MODES` (default
    ``double``, TFLM/CMSIS-NN, or what the model records: ``single`` for a QONNX model, which
    then equals Brevitas and qonnx bit for bit). A model that is already integer (an int8 TFLite model, an
    edgec graph) is returned as is, with ``rounding`` recorded if given. ``input_layout``
    (``"nhwc"`` or ``"nchw"``; default: the model's own, NCHW for ONNX and PyTorch, NHWC for
    TFLite) is the layout of the integer graph's 3-D/4-D input
    (:class:`~edgec.passes.input_layout.InputLayoutPass`); ``calib`` stays in the layout of
    ``source``'s input. ``weight_bits`` (2 to 8) and ``activation_bits`` (2 to 8, or 16),
    default 8, are the widths of post-training quantization: weights symmetric per channel in
    ``[-(2^(b-1) - 1), 2^(b-1) - 1]``, activations asymmetric signed (16: the 16x8 scheme,
    symmetric int16 with int64 biases); tensors whose
    quantization the model records (QDQ, QONNX) keep it. ``delta`` (a
    :class:`~edgec.delta.DeltaScheme`) stores the weights as references plus narrow deltas
    (:class:`~edgec.passes.delta_encode.DeltaEncodePass`, also on an already integer model);
    weights it changes (a model not trained for the scheme) give a warning with the error; a
    model written by ``edgec train --delta`` records its scheme, used when ``delta`` is None.
    """
    if rounding is not None and rounding not in ROUNDING_MODES:
        raise InputDataError(f"unknown rounding mode '{rounding}'", f"use one of {list(ROUNDING_MODES)}")
    if weight_bits not in VALUE_BITS:
        raise InputDataError(f"weight_bits is {weight_bits}", f"give {VALUE_BITS.start} to {VALUE_BITS.stop - 1} bits")
    if activation_bits not in ACTIVATION_BITS:
        raise InputDataError(f"activation_bits is {activation_bits}",
                             f"give {VALUE_BITS.start} to {VALUE_BITS.stop - 1} bits, or 16 (the 16x8 scheme)")
    model = load(source, example_inputs=example_inputs, input_shapes=input_shapes, dump_dir=dump_dir)
    if delta is None and DELTA_KEY in model.metadata_props:  # trained for it: edgec train --delta
        delta = DeltaScheme.from_json(model.metadata_props[DELTA_KEY])
    if ops.is_integer_model(model):
        if calib is not None:
            warnings.warn("the model is already quantized; the calibration data is not used", EdgecWarning,
                          stacklevel=2)
        if (weight_bits, activation_bits) != (8, 8):
            warnings.warn("the model is already quantized; weight_bits and activation_bits are not used",
                          EdgecWarning, stacklevel=2)
        if rounding is not None and model.metadata_props.get(ops.ROUNDING_KEY) != rounding:
            if model is source:  # record the mode on a copy: the caller's model stays as it was
                model = ir.from_proto(ir.to_proto(model))
            model.metadata_props[ops.ROUNDING_KEY] = rounding
        if delta is not None and model is source:
            model = ir.from_proto(ir.to_proto(model))
        return _with_input_layout(_delta_encoded(model, delta), input_layout)
    samples = calibration_samples(model, calib)
    if not samples and _needs_calibration(model):
        raise InputDataError("quantization needs calibration data",
                             "give --calib FILE (.npy/.npz with N input samples), or --calib random to accept poor accuracy")
    ranges = calibrate(model, samples, method, advance) if samples else {}
    first = len(canonical_passes()) if dump_dir is not None else 0
    rounding = rounding or model.metadata_props.get(ops.ROUNDING_KEY, "double")  # a QONNX model records "single"
    passes = integer_passes(ranges, rounding, weight_bits=weight_bits, activation_bits=activation_bits)
    model = run_passes(model, passes, dump_dir, first_index=first)
    return _with_input_layout(_delta_encoded(model, delta), input_layout)


def _delta_encoded(model: ir.Model, delta: DeltaScheme | None) -> ir.Model:
    """``model`` with its weights delta-encoded (in place), warning when that changed weights."""
    if delta is None:
        return model
    encode = DeltaEncodePass(delta)
    model = run_passes(model, [encode])
    totals = delta_total(encode.report)
    if not any(layer.encoded for layer in encode.report):
        warnings.warn(f"no layer's weights are wider than {delta.bits} bits: nothing was delta-encoded",
                      EdgecWarning, stacklevel=3)
    elif totals["changed"]:
        warnings.warn(f"{delta.describe()} changed {totals['changed']} of {totals['weights']} weights "
                      f"(largest error {totals['max_error']} steps): the model was not trained for it; "
                      "train it with edgec train --delta to make the encoding exact", EdgecWarning, stacklevel=3)
    return model


def _with_input_layout(model: ir.Model, input_layout: str | None) -> ir.Model:
    """``model`` with its input in ``input_layout`` (``None``: as it is; never modified in place)."""
    return model if input_layout is None else run_passes(model, [InputLayoutPass(input_layout)])


def compile_model(source, target, output: str | Path, calib=None, *, method: str = "minmax",
                  rounding: str | None = None, example_inputs=None,
                  input_shapes: Mapping[str, Sequence[int]] | None = None, name: str | None = None,
                  input_layout: str | None = None, weight_bits: int = 8, activation_bits: int = 8,
                  delta: DeltaScheme | None = None, **options) -> dict:
    """Quantize ``source`` (if needed) and compile it for ``target`` into the project ``output``.

    ``target``: a packaged target's name, the path of a target TOML file, or a
    :class:`~edgec.target.Target` (resolved by :func:`edgec.target.get_target`); its kind picks
    the backend (:func:`edgec.backend.backend_for_target`), which runs its passes, checks that
    it takes every node (:meth:`~edgec.backend.Backend.check`) and compiles.

    Exported as ``edgec.compile``. ``name`` (default :func:`model_name`) names the model in the
    project; ``input_layout``, ``weight_bits``, ``activation_bits`` and ``delta`` are as for :func:`quantize`.
    ``options`` are the backend's (an unknown one is an error); the Cortex-M backend's: ``ignore_size_limits`` (go on when the
    model exceeds the part's flash or RAM), ``emit_only`` (write the project without building
    it: no cross compiler needed; flash and stack are then not measured) and
    ``separate_io=False`` (the C input and output may share arena bytes). Returns the
    project's report (``output/report.json``).
    """
    resolved = get_target(target)
    backend = backend_for_target(resolved)
    options = backend.checked_options(options)
    if backend.graph_level != INTEGER_GRAPH:
        raise UnsupportedModelError(f"the {backend.name} backend takes a {backend.graph_level} graph, which "
                                    "edgec cannot hand to a backend yet",
                                    "compile for a target whose backend takes the integer graph")
    integer_model = quantize(source, calib, method=method, rounding=rounding, example_inputs=example_inputs,
                             input_shapes=input_shapes, input_layout=input_layout, weight_bits=weight_bits,
                             activation_bits=activation_bits, delta=delta)
    branching = next((node for node in all_nodes(integer_model.graph) if is_branching(node)), None)
    if branching is not None and not backend.branches:
        raise UnsupportedModelError(f"the model branches (If node '{branching.name}'): the {backend.name} backend "
                                    "does not run control flow", "compile it for a cortex-m target")
    passes = backend.passes(resolved)
    model = run_passes(integer_model, passes) if passes else integer_model
    backend.check(model, resolved)
    return backend.compile(model, resolved, Path(output), name=name or model_name(source), **options)


def run(model, inputs, rounding: str | None = None) -> list[dict[str, np.ndarray]]:
    """Run an edgec integer graph on ``inputs`` (array, dict of arrays, .npy/.npz path) sample by
    sample with the integer reference executor, on the host.

    ``model``: an ``onnx_ir.Model`` or ``onnx.ModelProto`` (e.g. from :func:`quantize`), an
    integer ``.onnx`` or int8 ``.tflite`` file, or a compiled project directory, whose
    ``model.onnx`` (the integer graph its code was generated from) is run here; to run the
    compiled code itself (on QEMU, for Cortex-M), use ``edgec run DIR`` on the command line, or
    :func:`edgec.backend.open_project` and its backend's ``run``. A float model is an error:
    quantize it first. ``rounding`` overrides the model's recorded mode.
    """
    takes = ("pass an integer graph: an onnx_ir.Model or onnx.ModelProto from edgec.quantize, an .onnx or "
             ".tflite file, or a compiled project directory")
    spec = isinstance(model, str) and is_module_spec(model)
    if spec or _is_torch_module(model) or not isinstance(model, ir.Model | onnx.ModelProto | str | Path):
        what = f"the PyTorch spec '{model}'" if spec else f"an object of type {type(model).__name__}"
        raise UnsupportedModelError(f"edgec.run cannot run {what}",
                                    f"{takes}; quantize a float or PyTorch model first: "
                                    "edgec.run(edgec.quantize(model, calib), inputs)")
    integer = _import(model)
    if not ops.is_integer_model(integer):
        raise UnsupportedModelError("the model is not quantized",
                                    "quantize it first: edgec.run(edgec.quantize(model, calib), inputs)")
    samples = input_samples(integer, inputs)
    executor = ReferenceExecutor(integer, rounding)
    return [executor.run(sample) for sample in samples]
