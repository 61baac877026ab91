"""One-operator TFLite models whose TFLM outputs are edgec's operator goldens.

``scripts/tflm/make_goldens.py`` runs every case of :func:`cases` with TFLM's kernels (the
host build of ``scripts/tflm/operator_driver.cc``) and stores the outputs in
``tests/data/tflm_operators.npz``, keyed by case name, beside the SHA-256 of the model the
output belongs to; the tests rebuild each model from here and compare. Element-wise cases
feed all 256 int8 values, so they pin the operator on every input.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from tflite_builder import TfliteBuilder, options, schema

OP = schema.BuiltinOperator
OPTIONS = schema.BuiltinOptions
ALL_INT8 = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)


@dataclasses.dataclass(frozen=True)
class Case:
    """A model (``.tflite`` bytes), its inputs, the name its golden is stored under, and the
    TFLite operator it tests."""

    name: str
    operator: str
    model: bytes
    inputs: tuple[np.ndarray, ...]

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.model).hexdigest()


def unary_model(builtin: int, q_in, q_out, options_type: int = 0, builtin_options=None) -> bytes:
    """A model of one element-wise ``builtin`` from a [1, 256] input quantized ``q_in`` to ``q_out``."""
    b = TfliteBuilder()
    x = b.tensor(ALL_INT8.shape, scale=q_in[0], zero_point=q_in[1])
    y = b.tensor(ALL_INT8.shape, scale=q_out[0], zero_point=q_out[1])
    b.operator(builtin, [x], [y], options_type, builtin_options)
    return b.build([x], [y])


#: Input quantizations of the fixed-output activations: typical, saturating, coarse, fine.
_ACTIVATION_INPUTS = ((0.05, 3), (0.1, -128), (0.0078125, 0), (0.3, 20), (0.002, -5), (0.0625, 127))
#: (input, output) quantizations of HARD_SWISH and LEAKY_RELU.
_REQUANTIZING_PAIRS = (((0.05, 3), (0.04, -100)), ((0.1, -20), (0.06, -90)), ((0.02, 0), (0.02, -120)),
                       ((0.2, 10), (0.5, -10)), ((0.03, -128), (0.1, 50)))
_LEAKY_ALPHAS = (0.1, 0.2, 0.01, -0.3, 1.5)


def activation_cases() -> list[Case]:
    """LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU and RELU6 on every int8 input."""
    found = []
    for q_in in _ACTIVATION_INPUTS:
        tag = f"{q_in[0]}_{q_in[1]}"
        found.append(Case(f"logistic_{tag}", "LOGISTIC", unary_model(OP.LOGISTIC, q_in, (1 / 256, -128)), (ALL_INT8,)))
        found.append(Case(f"tanh_{tag}", "TANH", unary_model(OP.TANH, q_in, (1 / 128, 0)), (ALL_INT8,)))
        found.append(Case(f"relu6_{tag}", "RELU6", unary_model(OP.RELU6, q_in, q_in), (ALL_INT8,)))
    for q_in, q_out in _REQUANTIZING_PAIRS:
        tag = f"{q_in[0]}_{q_in[1]}_{q_out[0]}_{q_out[1]}"
        found.append(Case(f"hard_swish_{tag}", "HARD_SWISH", unary_model(OP.HARD_SWISH, q_in, q_out), (ALL_INT8,)))
        found.append(Case(f"relu_{tag}", "RELU", unary_model(OP.RELU, q_in, q_out), (ALL_INT8,)))
        for alpha in _LEAKY_ALPHAS:
            model = unary_model(OP.LEAKY_RELU, q_in, q_out, OPTIONS.LeakyReluOptions,
                           options(schema.LeakyReluOptionsT, alpha=alpha))
            found.append(Case(f"leaky_relu_{alpha}_{tag}", "LEAKY_RELU", model, (ALL_INT8,)))
    return found


def cases() -> list[Case]:
    """Every case with a stored golden."""
    return activation_cases()
