"""A seeded structured mutator of ONNX and TFLite models, and the check of one fuzz case.

Each :class:`Case` is the bytes of a mutated model file plus extra command-line arguments.
:func:`onnx_cases` mutates an ``onnx.ModelProto`` structurally (one mutation per case:
op types, attributes set to -1/0/huge/NaN, inputs dropped or renamed, initializer dims and
values, input dtype and shape, deleted nodes, opsets 1/7/99, renamed outputs, a wrong
``--input-shape``) or as bytes (random byte flips, truncation); :func:`byte_cases` does the
byte mutations of any file (TFLite models). The same seed gives the same cases.

:func:`check_case` runs a case through ``edgec inspect`` and ``edgec quantize --calib
random`` (in-process) and lists every breach of the error contract: an exit status other
than 0 or 2, a traceback or internal error, anything but exactly one ``error: ... (fix:
...)`` line on a failure, files left in the output directory, onnxruntime log lines (read
at the file-descriptor level, where onnxruntime's C++ logger writes).

Run as a script to count outcomes: ``python tests/fuzz_mutations.py --cases 300``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from conftest import SHARED, SHARED_MODELS, TFLITE_MODELS, invoke, make_model, small_conv_model, tensor_info

HUGE_INT = 2**40
OUTCOMES = ("cases", "clean errors", "successes", "internal errors")
OP_TYPES = ["Relu", "Conv", "Gemm", "Add", "MaxPool", "Reshape", "Softmax", "Sin", "Transpose", "Concat",
            "BatchNormalization", "NoSuchOp"]
KNOWN_ATTRIBUTES = {
    "Conv": ["group", "strides", "dilations", "pads", "kernel_shape", "auto_pad"],
    "Gemm": ["transA", "transB", "alpha", "beta"],
    "Flatten": ["axis"],
    "MaxPool": ["kernel_shape", "strides", "pads", "ceil_mode"],
    "Softmax": ["axis"],
    "BatchNormalization": ["epsilon", "momentum"],
    "Concat": ["axis"],
    "Transpose": ["perm"],
}
INPUT_DTYPES = [TensorProto.INT64, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.UINT8, TensorProto.INT8,
                TensorProto.BOOL, TensorProto.STRING, TensorProto.UNDEFINED, 999]


@dataclasses.dataclass(frozen=True)
class Case:
    """One fuzz case: a model file's bytes, its suffix, and extra CLI arguments."""

    name: str
    data: bytes
    suffix: str = ".onnx"
    args: tuple[str, ...] = ()


def mixed_model(rng: np.random.Generator) -> onnx.ModelProto:
    """x[1,3,8,8] -> Conv -> BatchNorm -> Relu -> MaxPool -> Reshape -> MatMul -> Add -> Softmax -> y.

    Reaches more canonicalization passes than :func:`conftest.small_conv_model` (BatchNorm
    folding, Reshape spellings, constant shape inputs).
    """
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["bn"], name="bn", epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="reshape"),
        helper.make_node("MatMul", ["f", "fw"], ["m"], name="fc"),
        helper.make_node("Add", ["m", "fb"], ["a"], name="bias"),
        helper.make_node("Softmax", ["a"], ["y"], name="softmax", axis=-1),
    ]
    inits = {"w": rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "g": rng.uniform(0.5, 1.5, 4).astype(np.float32),
             "beta": rng.normal(size=4).astype(np.float32), "mean": rng.normal(size=4).astype(np.float32),
             "var": rng.uniform(0.5, 2, 4).astype(np.float32), "shape": np.array([1, 64], np.int64),
             "fw": rng.normal(size=(64, 5)).astype(np.float32), "fb": rng.normal(size=5).astype(np.float32)}
    return make_model(nodes, [tensor_info("x", [1, 3, 8, 8])], [tensor_info("y", [1, 5])], inits)


def small_models() -> dict[str, onnx.ModelProto]:
    """The tests' own small float models, by name (no shared data needed)."""
    rng = np.random.default_rng(7)
    return {"small_conv": small_conv_model(rng, batch=1), "mixed": mixed_model(rng)}


# -- structured mutations: each edits ``proto`` in place and returns what it did ----------
def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _node(proto, rng):
    return _pick(rng, list(proto.graph.node))


def mutate_op_type(proto, rng) -> str:
    node = _node(proto, rng)
    node.op_type = _pick(rng, [op for op in OP_TYPES if op != node.op_type])
    return f"node '{node.name}' becomes {node.op_type}"


def _attribute_value(rng, like: onnx.AttributeProto | None):
    choice = int(rng.integers(5))
    if like is not None and like.type == onnx.AttributeProto.FLOAT:
        return [-1.0, 0.0, 1e30, math.nan, math.inf][choice]
    if like is not None and like.type == onnx.AttributeProto.INTS:
        count = max(len(like.ints), 1)
        return [[-1] * count, [0] * count, [HUGE_INT] * count, [], [1] * (count + 1)][choice]
    if like is not None and like.type == onnx.AttributeProto.STRING:
        return ["", "SAME_UPPER", "VALID", "NOTSET", "nonsense"][choice]
    return [-1, 0, HUGE_INT, -HUGE_INT, 2][choice]


def mutate_attribute(proto, rng) -> str:
    node = _node(proto, rng)
    existing = {a.name: a for a in node.attribute}
    names = sorted(set(existing) | set(KNOWN_ATTRIBUTES.get(node.op_type, []))) or ["axis"]
    name = _pick(rng, names)
    value = _attribute_value(rng, existing.get(name))
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend([*kept, helper.make_attribute(name, value)] if value != [] else kept)
    return f"node '{node.name}' attribute {name}={value}"


def mutate_drop_input(proto, rng) -> str:
    node = _node(proto, rng)
    if not node.input:
        return "no-op"
    index = int(rng.integers(len(node.input)))
    if rng.random() < 0.5:
        node.input[index] = ""
    else:
        del node.input[index]
    return f"node '{node.name}' loses input {index}"


def mutate_rename_input(proto, rng) -> str:
    node = _node(proto, rng)
    if not node.input:
        return "no-op"
    index = int(rng.integers(len(node.input)))
    names = ["missing_tensor", node.output[0], proto.graph.output[0].name, proto.graph.input[0].name,
             *(t.name for t in proto.graph.initializer)]
    node.input[index] = _pick(rng, names)
    return f"node '{node.name}' input {index} renamed to {node.input[index]}"


def mutate_initializer_dims(proto, rng) -> str:
    tensor = _pick(rng, list(proto.graph.initializer))
    dims = list(tensor.dims) or [1]
    axis = int(rng.integers(len(dims)))
    dims[axis] = int(_pick(rng, [0, dims[axis] + 1, max(dims[axis] - 1, 1) * 2, -1]))
    if rng.random() < 0.3:
        dims.append(1)
    del tensor.dims[:]
    tensor.dims.extend(dims)
    return f"initializer '{tensor.name}' dims {dims}"


def mutate_initializer_values(proto, rng) -> str:
    tensor = _pick(rng, list(proto.graph.initializer))
    try:
        array = onnx.numpy_helper.to_array(tensor).copy()
    except ValueError:  # dims already mutated (by mutate_twice)
        return "no-op"
    value = _pick(rng, [0, math.nan, math.inf, -math.inf, 1e38, -1, 7])
    if not np.issubdtype(array.dtype, np.floating) and value not in (0, -1, 7):
        value = 0
    if array.size and rng.random() < 0.5:
        array.flat[int(rng.integers(array.size))] = value
    else:
        array[...] = value
    tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
    return f"initializer '{tensor.name}' values set to {value}"


def mutate_input_dtype(proto, rng) -> str:
    value = proto.graph.input[0]
    value.type.tensor_type.elem_type = int(_pick(rng, INPUT_DTYPES))
    return f"input '{value.name}' dtype {value.type.tensor_type.elem_type}"


def mutate_input_shape(proto, rng) -> str:
    """The declared input shape: a channel more, a dim fewer or more, an empty or a named dim."""
    value = proto.graph.input[0]
    dims = value_dims(value)
    dims = _pick(rng, [[dims[0], dims[1] + 1, *dims[2:]], dims[:-1], [*dims[:-1], 0], [*dims, 2], ["N", *dims[1:]]])
    value.type.CopyFrom(helper.make_tensor_type_proto(value.type.tensor_type.elem_type, dims))
    return f"input shape {dims}"


def mutate_delete_node(proto, rng) -> str:
    index = int(rng.integers(len(proto.graph.node)))
    name = proto.graph.node[index].name
    del proto.graph.node[index]
    return f"node '{name}' deleted"


def mutate_opset(proto, rng) -> str:
    version = int(_pick(rng, [1, 7, 99, 10, 12]))
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = version
    return f"opset {version}"


def mutate_rename_output(proto, rng) -> str:
    output = proto.graph.output[0]
    output.name = _pick(rng, ["renamed_output", proto.graph.input[0].name, ""])
    return f"output renamed to '{output.name}'"


def mutate_twice(proto, rng) -> str:
    """Two structured mutations, one after the other."""
    kinds = [kind for kind in STRUCTURED if kind != "twice"]
    done = [STRUCTURED[_pick(rng, kinds)](proto, rng) for _ in range(2)]
    return " and ".join(done)


STRUCTURED = {
    "op_type": mutate_op_type, "attribute": mutate_attribute, "drop_input": mutate_drop_input,
    "rename_input": mutate_rename_input, "initializer_dims": mutate_initializer_dims,
    "initializer_values": mutate_initializer_values, "input_dtype": mutate_input_dtype,
    "input_shape": mutate_input_shape, "delete_node": mutate_delete_node, "opset": mutate_opset,
    "rename_output": mutate_rename_output, "twice": mutate_twice,
}


def value_dims(value: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim]


def wrong_input_shape(proto, rng) -> tuple[str, ...]:
    """``--input-shape`` arguments that contradict the model's first layer."""
    dims = value_dims(proto.graph.input[0])
    axis = int(rng.integers(1, len(dims))) if len(dims) > 1 else 0
    dims[axis] += int(rng.integers(1, 4))
    return ("--input-shape", ",".join(map(str, dims)))


# -- byte mutations --------------------------------------------------------------------------
def flip_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    """XOR 1 to 8 bytes at random positions with random non-zero values."""
    out = bytearray(data)
    for position in rng.integers(len(out), size=int(rng.integers(1, 9))):
        out[position] ^= int(rng.integers(1, 256))
    return bytes(out)


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(len(data)))]


def byte_cases(label: str, data: bytes, count: int, seed: int, suffix: str) -> Iterator[Case]:
    """``count`` byte-flipped or truncated copies of ``data`` (alternating)."""
    for index in range(count):
        rng = np.random.default_rng([seed, index, 1])
        mutate = flip_bytes if index % 2 == 0 else truncate
        yield Case(f"{label}/{mutate.__name__}/{index}", mutate(data, rng), suffix)


def onnx_cases(label: str, proto: onnx.ModelProto, count: int, seed: int,
               kinds: tuple[str, ...] = (*STRUCTURED, "input_shape_arg", "flip_bytes", "truncate")) -> Iterator[Case]:
    """``count`` mutated copies of ``proto``, cycling through ``kinds``."""
    data = proto.SerializeToString()
    for index in range(count):
        kind = kinds[index % len(kinds)]
        rng = np.random.default_rng([seed, index, 0])
        if kind in ("flip_bytes", "truncate"):
            yield Case(f"{label}/{kind}/{index}", (flip_bytes if kind == "flip_bytes" else truncate)(data, rng))
        elif kind == "input_shape_arg":
            yield Case(f"{label}/{kind}/{index}", data, args=wrong_input_shape(proto, rng))
        else:
            mutated = onnx.ModelProto()
            mutated.CopyFrom(proto)
            what = STRUCTURED[kind](mutated, rng)
            yield Case(f"{label}/{kind}/{index}: {what}", mutated.SerializeToString())


# -- running a case --------------------------------------------------------------------------
@contextlib.contextmanager
def captured_fds() -> Iterator[Callable[[], str]]:
    """Capture what is written to file descriptors 1 and 2 (C++ loggers write there)."""
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as capture:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            yield lambda: (capture.seek(0), capture.read().decode(errors="replace"))[1]
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _contract_breaches(command: str, result, out_dir: Path, output: Path | None, fd_text: str) -> list[str]:
    text = result.output + fd_text
    problems = []
    if result.exit_code not in (0, 2):
        problems.append(f"{command}: exit status {result.exit_code}: {result.output.strip()[-300:]}")
    if "Traceback" in text or "internal error" in text:
        problems.append(f"{command}: traceback or internal error: {text.strip()[-300:]}")
    if "[W:onnxruntime" in text or "[E:onnxruntime" in text:
        problems.append(f"{command}: onnxruntime log lines reached the terminal")
    if result.exit_code == 2:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if not line.startswith("warning: ")]
        if len(errors) != 1 or not errors[0].startswith("error: ") or "(fix: " not in errors[0]:
            problems.append(f"{command}: not one 'error: ... (fix: ...)' line: {lines}")
    left = sorted(p.name for p in out_dir.iterdir())
    expected = [output.name] if output is not None and result.exit_code == 0 else []
    if left != expected:
        problems.append(f"{command}: files left in the output directory: {left}")
    return problems


def check_case(case: Case, workdir: Path) -> tuple[list[int], list[str]]:
    """Run ``case`` through inspect and quantize; return (exit statuses, contract breaches)."""
    workdir.mkdir(parents=True, exist_ok=True)
    model = workdir / f"model{case.suffix}"
    model.write_bytes(case.data)
    statuses, problems = [], []
    for command in ("inspect", "quantize"):
        out_dir = workdir / f"out_{command}"
        out_dir.mkdir()
        output = out_dir / "out.onnx" if command == "quantize" else None
        args = [command, model, *case.args] + (["--calib", "random", "-o", output] if output else [])
        with captured_fds() as read_fds:
            result = invoke(*args)
            fd_text = read_fds()
        statuses.append(result.exit_code)
        problems += _contract_breaches(command, result, out_dir, output, fd_text)
    return statuses, problems


def shared_sources() -> tuple[dict[str, onnx.ModelProto], dict[str, bytes]]:
    """The shared ONNX models (parsed) and TFLite files (bytes) that exist under ``SHARED``."""
    onnx_models = {key: onnx.load(str(SHARED / "models" / name)) for key, (name, _) in SHARED_MODELS.items()
                   if (SHARED / "models" / name).exists()}
    tflite = {key: (SHARED / "models/tflite" / f"{name}.tflite").read_bytes() for key, (name, _) in TFLITE_MODELS.items()
              if (SHARED / "models/tflite" / f"{name}.tflite").exists()}
    return onnx_models, tflite


def all_cases(count: int, seed: int) -> list[Case]:
    """About ``count`` cases: 3/5 from the small models, the rest from the shared files when present."""
    cases: list[Case] = []
    small = small_models()
    for offset, (label, proto) in enumerate(small.items()):
        cases += onnx_cases(label, proto, count * 3 // 5 // len(small), seed + offset)
    onnx_models, tflite = shared_sources()
    sources = len(onnx_models) + len(tflite)
    for offset, (label, proto) in enumerate(onnx_models.items()):
        cases += onnx_cases(label, proto, count * 2 // 5 // max(sources, 1), seed + 10 + offset)
    for offset, (label, data) in enumerate(tflite.items()):
        cases += byte_cases(f"{label}_tflite", data, count * 2 // 5 // max(sources, 1), seed + 20 + offset, ".tflite")
    return cases


def run_cases(cases, workdir: Path) -> tuple[collections.Counter, list[str]]:
    """Check every case: the counts of cases, clean errors, successes and internal errors (any
    contract breach), and the breaches, each prefixed with its case's name."""
    counts, breaches = collections.Counter({key: 0 for key in OUTCOMES}), []
    for number, case in enumerate(cases):
        statuses, problems = check_case(case, workdir / f"case{number}")
        counts["cases"] += 1
        counts["internal errors" if problems else "clean errors" if 2 in statuses else "successes"] += 1
        breaches += [f"{case.name}: {problem}" for problem in problems]
    return counts, breaches


def main() -> None:
    parser = argparse.ArgumentParser(description="Fuzz edgec's frontend and count the outcomes.")
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="print every contract breach")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgec-fuzz-") as tmp:
        counts, breaches = run_cases(all_cases(options.cases, options.seed), Path(tmp))
    for breach in breaches if options.verbose else []:
        print(breach)
    print(", ".join(f"{key}: {counts[key]}" for key in OUTCOMES))


if __name__ == "__main__":
    main()
