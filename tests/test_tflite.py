"""int8 TFLite models: imported as they are, and reproduced bit for bit.

Oracles no one here wrote: TFLM + CMSIS-NN's outputs and every intermediate tensor
(``shared/benchmarks/tflm_golden``), and LiteRT's interpreter with its reference kernels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import edgec
from edgec.cli import cli
from edgec.frontend.tflite_frontend import TFLITE_TENSOR_KEY
from edgec.reference import ReferenceExecutor

from conftest import TFLITE_MODELS, tflite_model_path, tflm_golden
from tflite_builder import pack, reference_interpreter, schema


def by_tensor_index(model) -> dict[int, str]:
    return {int(v.metadata_props[TFLITE_TENSOR_KEY]): v.name
            for node in model.graph for v in node.outputs if TFLITE_TENSOR_KEY in v.metadata_props}


@pytest.mark.parametrize("key", sorted(TFLITE_MODELS))
def test_reference_reproduces_tflm_outputs_and_every_intermediate_tensor(key):
    model = edgec.load(tflite_model_path(key))
    golden = tflm_golden(key)
    executor = ReferenceExecutor(model)
    name = executor.input_names[0]
    values = executor.run({name: golden["input"]}, keep_intermediates=True)
    names = by_tensor_index(model)
    compared = 0
    for entry in golden.files:
        if entry.startswith("tensor_") and int(entry[7:]) in names:
            ours = values[names[int(entry[7:])]]
            np.testing.assert_array_equal(ours.reshape(golden[entry].shape), golden[entry], err_msg=entry)
            compared += 1
    assert compared == sum(1 for e in golden.files if e.startswith("tensor_")) - 1  # all but the input
    output = executor.output_names[0]
    np.testing.assert_array_equal(values[output], golden["output"])
    np.testing.assert_array_equal(executor.run({name: np.zeros_like(golden["input"])})[output],
                                  golden["output_for_zeros"])


def first_difference(model, values, interpreter):
    """(operator, largest difference) of the first node whose output differs from LiteRT's."""
    for node in model.graph:
        value = node.outputs[0]
        theirs = interpreter.get_tensor(int(value.metadata_props[TFLITE_TENSOR_KEY]))
        if not np.array_equal(values[value.name].reshape(theirs.shape), theirs):
            return node.op_type, int(np.abs(values[value.name].reshape(theirs.shape).astype(int) - theirs).max())
    return None


@pytest.mark.parametrize("key", sorted(TFLITE_MODELS))
def test_reference_equals_litert_reference_kernels_on_random_inputs(key):
    """LiteRT's reference FULLY_CONNECTED rounds once, every other kernel twice, like TFLM.

    So mode ``litert`` equals LiteRT everywhere. The default (TFLM's double rounding) equals
    it except where an FC output lands on a double-rounding boundary: the first difference
    is then always a FullyConnected output, by 1 LSB (later layers may amplify it).
    """
    path = tflite_model_path(key)
    interpreter = reference_interpreter(path)
    input_detail, output_detail = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    model = edgec.load(path)
    executors = {mode: ReferenceExecutor(model, rounding=mode) for mode in ("double", "single", "litert")}
    equal = dict.fromkeys(executors, 0)
    rng = np.random.default_rng(2026)
    for _ in range(20):
        x = rng.integers(-128, 128, input_detail["shape"]).astype(np.int8)
        interpreter.set_tensor(input_detail["index"], x)
        interpreter.invoke()
        theirs = interpreter.get_tensor(output_detail["index"])
        for mode, executor in executors.items():
            values = executor.run({executor.input_names[0]: x}, keep_intermediates=True)
            same = np.array_equal(values[executor.output_names[0]], theirs)
            equal[mode] += int(same)
            if mode == "double" and not same:
                assert first_difference(model, values, interpreter) == ("FullyConnected", 1)
    print(f"{key}: equal to LiteRT BUILTIN_REF on 20 random inputs: {equal}")
    assert equal["litert"] == 20
    if key in ("kws", "vww"):
        assert equal["double"] == 20
    if key == "ad":
        assert equal["single"] == 20


@pytest.mark.parametrize("key", sorted(TFLITE_MODELS))
def test_inspect_reports_the_mlperf_macs(key):
    result = CliRunner().invoke(cli, ["inspect", str(tflite_model_path(key)), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_macs"] == TFLITE_MODELS[key][1]


def test_quantize_converts_a_tflite_model_to_an_integer_graph(tmp_path):
    out = tmp_path / "kws.onnx"
    result = CliRunner().invoke(cli, ["quantize", str(tflite_model_path("kws")), "-o", str(out)])
    assert result.exit_code == 0, result.output
    golden = tflm_golden("kws")
    np.save(tmp_path / "x.npy", golden["input"])
    result = CliRunner().invoke(cli, ["run", str(out), "--input", str(tmp_path / "x.npy"),
                                      "--output", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), golden["output"])


def _with_operator_replaced(path, tmp_path, builtin: int):
    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    code = model.operatorCodes[model.subgraphs[0].operators[-1].opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = builtin
    out = tmp_path / "edited.tflite"
    out.write_bytes(pack(model))
    return out, len(model.subgraphs[0].operators) - 1


def test_an_unsupported_tflite_operator_is_named_with_its_index(tmp_path):
    edited, index = _with_operator_replaced(tflite_model_path("kws"), tmp_path, schema.BuiltinOperator.EXP)
    result = CliRunner().invoke(cli, ["inspect", str(edited)])
    assert result.exit_code == 2
    assert "EXP" in result.stderr and f"operator {index}" in result.stderr and "CONV_2D" in result.stderr


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_tflite_file(tmp_path, damage):
    data = tflite_model_path("kws").read_bytes()
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(data[: len(data) // 3] if damage == "truncate" else b"\x00" * 64)
    result = CliRunner().invoke(cli, ["inspect", str(bad)])
    assert result.exit_code == 2 and result.stderr.startswith("error:") and "Traceback" not in result.output
