"""The delta codec (edgec.delta): exact round trips, checked exhaustively at small widths."""

import itertools

import numpy as np
import pytest

from edgec.delta import DeltaScheme, encode_exact, reconstruct, rows_to_weights, weight_rows
from edgec.errors import EdgecError
from edgec.inttype import IntType

INT3N = IntType(3, True, True)
SCHEMES = [DeltaScheme(bits, kind, scope, block)
           for bits in (2, 3) for kind in ("fixed", "consecutive", "closed-loop")
           for scope, block in (("tensor", 0), ("channel", 0), ("block", 2))]


def _all_matrices(rows, length, int_type):
    values = range(int_type.min, int_type.max + 1)
    for flat in itertools.product(values, repeat=rows * length):
        yield np.array(flat, dtype=np.int64).reshape(rows, length)


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: f"{s.scheme}-{s.bits}-{s.scope_name}")
def test_every_small_matrix_round_trips(scheme):
    """For every 2x2 matrix of int3n (7^4 of them): the reconstruction stays in the type, is a
    fixed point of itself, and its exact encoding decodes to it with deltas inside the width."""
    for matrix in _all_matrices(2, 2, INT3N):
        rec = reconstruct(matrix, scheme, INT3N)
        assert rec.min() >= INT3N.min and rec.max() <= INT3N.max
        np.testing.assert_array_equal(reconstruct(rec, scheme, INT3N), rec)
        encoded = encode_exact(rec, scheme, INT3N)
        assert encoded.deltas.min() >= scheme.delta_min and encoded.deltas.max() <= scheme.delta_max
        np.testing.assert_array_equal(encoded.decode(), rec)
        if np.array_equal(rec, matrix):
            continue
        with pytest.raises(EdgecError, match="not representable"):
            encode_exact(matrix, scheme, INT3N)


def test_closed_loop_never_drifts_and_open_loop_does():
    """A ramp steeper than the deltas: closed-loop errors stay bounded by the step shortfall of
    one element; open-loop errors grow along the row (the paper's observation)."""
    int8 = IntType(8, True, True)
    row = np.array([[0, 20, 0, 20, 0, 20, 0, 20]])
    closed = reconstruct(row, DeltaScheme(4, "closed-loop", "channel"), int8)
    opened = reconstruct(row, DeltaScheme(4, "consecutive", "channel"), int8)
    np.testing.assert_array_equal(closed, [[0, 7, 0, 7, 0, 7, 0, 7]])
    np.testing.assert_array_equal(opened, [[0, 7, -1, 6, -2, 5, -3, 4]])


def test_fixed_reference_is_the_centre():
    int8 = IntType(8, True, True)
    encoded = encode_exact(np.array([[10, 25, 18]]), DeltaScheme(4, "fixed", "channel"), int8)
    assert encoded.bases.tolist() == [[18]] and encoded.deltas.tolist() == [[-8, 7, 0]]


def test_storage_counts_deltas_and_references():
    assert DeltaScheme(4, "fixed", "channel").stored_bits(10, 100) == 10 * 100 * 4 + 10 * 8
    assert DeltaScheme(4, "fixed", "tensor").stored_bits(10, 100) == 4000 + 8
    assert DeltaScheme(4, "fixed", "block", 16).stored_bits(10, 100) == 4000 + 10 * 7 * 8


def test_parse_and_bad_options():
    assert DeltaScheme.parse(3, "fixed", "block:8") == DeltaScheme(3, "fixed", "block", 8)
    assert DeltaScheme.from_json(DeltaScheme.parse(5, "consecutive", "tensor").to_json()).bits == 5
    for args, message in (((7,), "delta width 7"), ((4, "zigzag"), "unknown delta scheme"),
                          ((4, "fixed", "block:x"), "block size"), ((4, "fixed", "layer"), "unknown delta scope")):
        with pytest.raises(EdgecError, match=message):
            DeltaScheme.parse(*args)


@pytest.mark.parametrize("op_type,shape", [("FullyConnected", (3, 5)), ("Conv", (4, 3, 3, 2)),
                                           ("DepthwiseConv", (1, 3, 3, 6))])
def test_rows_follow_the_kernels_order(op_type, shape):
    weights = np.arange(np.prod(shape)).reshape(shape)
    rows = weight_rows(op_type, weights)
    assert rows.shape[0] == (shape[-1] if op_type == "DepthwiseConv" else shape[0])
    if op_type == "DepthwiseConv":
        np.testing.assert_array_equal(rows[2], weights[0, :, :, 2].ravel())
    else:
        np.testing.assert_array_equal(rows[1], weights[1].ravel())
    np.testing.assert_array_equal(rows_to_weights(op_type, rows, shape), weights)


@pytest.mark.parametrize("kind", ["consecutive", "closed-loop"])
def test_long_chains_and_many_chains_agree(kind):
    """A few long chains take a scalar loop, many chains a vectorised one: same results."""
    int8 = IntType(8, True, True)
    row = np.random.default_rng(3).integers(-127, 128, (1, 100))
    scheme = DeltaScheme(3, kind, "channel")
    alone = reconstruct(row, scheme, int8)
    stacked = reconstruct(np.repeat(row, 20, axis=0), scheme, int8)
    np.testing.assert_array_equal(stacked, np.repeat(alone, 20, axis=0))
