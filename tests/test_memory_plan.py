"""The arena planner, with exact expected offsets."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgec.backends.cortex_m.memory_plan import Buffer, live_bytes_bound, plan_arena


def test_a_chain_ping_pongs_between_two_regions():
    buffers = [Buffer("a", 100, 0, 1), Buffer("b", 80, 1, 2), Buffer("c", 100, 2, 3), Buffer("d", 40, 3, 4)]
    plan = plan_arena(buffers, alignment=4)
    assert plan.offsets == {"a": 0, "b": 100, "c": 0, "d": 100}
    assert plan.size == 180 == live_bytes_bound(buffers, alignment=4)


def test_a_residual_keeps_the_skip_buffer_alive():
    buffers = [Buffer("x", 64, 0, 3), Buffer("y", 64, 1, 2), Buffer("z", 64, 2, 3), Buffer("sum", 64, 3, 4)]
    plan = plan_arena(buffers, alignment=8)
    assert plan.offsets == {"x": 0, "y": 64, "z": 128, "sum": 64}
    assert plan.size == 192


def test_alignment_rounds_sizes_and_offsets():
    plan = plan_arena([Buffer("a", 3, 0, 0), Buffer("b", 5, 0, 1), Buffer("c", 1, 1, 1)], alignment=8)
    assert plan.offsets == {"a": 8, "b": 0, "c": 8}
    assert plan.size == 16


def test_a_buffer_fills_the_first_gap_that_fits():
    buffers = [Buffer("a", 100, 0, 1), Buffer("b", 50, 1, 3), Buffer("c", 40, 2, 3), Buffer("d", 60, 2, 2)]
    plan = plan_arena(buffers, alignment=1)
    # placed by size: a at 0; d (no overlap with a) at 0; b after a and d at 100;
    # c overlaps d [0, 60) and b [100, 150): the gap [60, 100) holds it
    assert plan.offsets == {"a": 0, "b": 100, "c": 60, "d": 0}
    assert plan.size == 150


def test_duplicate_names_are_rejected():
    with pytest.raises(ValueError):
        plan_arena([Buffer("a", 1, 0, 0), Buffer("a", 1, 1, 1)])


lifetimes = st.lists(st.tuples(st.integers(1, 64), st.integers(0, 10), st.integers(0, 4)), min_size=1, max_size=12)


@given(lifetimes)
def test_plans_never_overlap_live_buffers_and_respect_the_bound(specs):
    buffers = [Buffer(f"b{i}", size, first, first + length) for i, (size, first, length) in enumerate(specs)]
    plan = plan_arena(buffers, alignment=4)
    for a, b in itertools.combinations(buffers, 2):
        if a.overlaps_in_time(b):
            a0, b0 = plan.offsets[a.name], plan.offsets[b.name]
            assert a0 + a.size <= b0 or b0 + b.size <= a0
    assert all(plan.offsets[b.name] + b.size <= plan.size for b in buffers)
    assert plan.size >= live_bytes_bound(buffers, alignment=4)
    assert all(offset % 4 == 0 for offset in plan.offsets.values())
