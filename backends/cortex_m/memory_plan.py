"""Arena planning: offsets for every intermediate buffer from its lifetime.

A buffer is live from the step that first writes it to the last step that reads it
(inclusive). Two buffers may share bytes only if their lifetimes do not intersect.

Algorithm: greedy first-fit placement, as tflite-micro's GreedyMemoryPlanner: buffers are
placed one by one, each at the lowest aligned offset at which it overlaps no already-placed
buffer whose lifetime intersects its own. The result depends on the order, so four orders
are tried — decreasing size (tflite-micro's), decreasing size x lifetime, increasing first
step, decreasing last step (ties: name) — and the smallest arena wins (the first order on a
tie). Deterministic for a given input.

Buffers named together in ``apart`` never share a byte, whatever their lifetimes (the
Cortex-M backend keeps the model's input and output apart this way). Two candidates are
compared: first fit with that constraint (the same four orders), and the unconstrained plan
with the smaller buffer of each clashing pair moved to a fresh region at the end; the smaller
arena wins. So the constraint costs at most the aligned size of the smaller buffer of each
pair; :attr:`ArenaPlan.apart_cost` says what it cost (0 when, greedy placement being no
optimum, the constrained plan comes out smaller than the unconstrained one).

Limits: the problem (dynamic storage allocation) is NP-hard; greedy placement is not optimal
in general. Without chains the arena is never smaller than :func:`live_bytes_bound`, the
largest sum of sizes live at one step, and on chain-like networks it usually equals it.
Aliasing (a Reshape viewing its input, an elementwise operator writing over an input that
dies there) is decided before planning by merging such tensors into one buffer.

Chains go below that bound: a chain is a group of buffers placed together at fixed offsets
from one another (a layer's output starting a lag before the input that dies at it, so that
the two overlap; :mod:`backends.cortex_m.overlap`). First fit places a chain as a unit, at
the lowest base at which no member clashes with a placed buffer; every member keeps its own
lifetime, so what the chain no longer uses is free for others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Buffer:
    """A block of the arena: ``size`` bytes live over steps ``first`` .. ``last``."""

    name: str
    size: int
    first: int
    last: int

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclasses.dataclass(frozen=True)
class ArenaPlan:
    """Byte offset of every buffer and the arena size (a multiple of the alignment).

    ``apart_cost``: bytes the ``apart`` constraint added over the unconstrained plan.
    """

    offsets: dict[str, int]
    size: int
    apart_cost: int = 0


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


_ORDERS = (
    lambda b: (-b.size, b.first, b.name),
    lambda b: (-b.size * (b.last - b.first + 1), b.first, b.name),
    lambda b: (b.first, -b.size, b.name),
    lambda b: (-b.last, -b.size, b.name),
)


Placement = dict[str, tuple[int, int]]  # buffer name -> (offset, aligned size)


Chains = dict[str, tuple[tuple[Buffer, int], ...]]  # buffer name -> its chain's (member, relative offset)


def _clashes(buffer: Buffer, offset: int, size: int, placed, apart: frozenset[frozenset[str]]) -> bool:
    return any(offset < o + length and o < offset + size
               for o, length, other in placed
               if other.overlaps_in_time(buffer) or frozenset((buffer.name, other.name)) in apart)


def _chain_base(members: tuple[tuple[Buffer, int], ...], placed, alignment: int,
                apart: frozenset[frozenset[str]]) -> int:
    """The lowest base at which every member (at base + its offset) fits: the lowest of the
    bases that start the chain at 0 or put some member right after a placed buffer."""
    low = -min(rel for _, rel in members)
    candidates = sorted({low} | {_align(o + length, alignment) - rel for o, length, _ in placed
                                 for _, rel in members if _align(o + length, alignment) - rel >= low})
    for base in candidates:
        if not any(_clashes(b, base + rel, _align(max(b.size, 1), alignment), placed, apart) for b, rel in members):
            return base
    raise AssertionError("a base past every placed buffer always fits")


def _first_fit(order: Sequence[Buffer], alignment: int, apart: frozenset[frozenset[str]],
               chains: Chains) -> Placement:
    placed: list[tuple[int, int, Buffer]] = []  # (offset, aligned size, buffer)
    done: set[str] = set()
    for buffer in order:
        if buffer.name in done:
            continue
        if buffer.name in chains:
            members = chains[buffer.name]
            base = _chain_base(members, placed, alignment, apart)
            for member, rel in members:
                placed.append((base + rel, _align(max(member.size, 1), alignment), member))
                done.add(member.name)
            continue
        size = _align(max(buffer.size, 1), alignment)
        busy = sorted((offset, offset + length) for offset, length, other in placed
                      if other.overlaps_in_time(buffer) or frozenset((buffer.name, other.name)) in apart)
        offset = 0
        for start, end in busy:
            if offset + size <= start:
                break
            offset = max(offset, _align(end, alignment))
        placed.append((offset, size, buffer))
    return {buffer.name: (offset, size) for offset, size, buffer in placed}


def _extent(placement: Placement) -> int:
    return max((offset + length for offset, length in placement.values()), default=0)


def _best_first_fit(buffers: Sequence[Buffer], alignment: int, apart: frozenset[frozenset[str]],
                    chains: Chains) -> Placement:
    best: Placement | None = None
    for key in _ORDERS:
        placement = _first_fit(sorted(buffers, key=key), alignment, apart, chains)
        if best is None or _extent(placement) < _extent(best):
            best = placement
    return best


def _moved_apart(placement: Placement, pairs: Sequence[tuple[str, str]]) -> Placement:
    """``placement`` with the smaller buffer of each pair sharing bytes moved past the end."""
    moved = dict(placement)
    for a, b in pairs:
        (a_offset, a_size), (b_offset, b_size) = moved[a], moved[b]
        if a_offset < b_offset + b_size and b_offset < a_offset + a_size:
            smaller = a if a_size <= b_size else b
            moved[smaller] = (_extent(moved), moved[smaller][1])
    return moved


def plan_arena(buffers: Sequence[Buffer], alignment: int = 8, apart: Sequence[tuple[str, str]] = (),
               chains: Sequence[Sequence[tuple[str, int]]] = ()) -> ArenaPlan:
    """Place ``buffers`` (see the module docstring); sizes are rounded up to ``alignment``.

    ``apart``: pairs of buffer names that must not share bytes even when their lifetimes
    do not intersect. ``chains``: groups of buffers placed together, each at its given
    offset (a multiple of ``alignment``) from the group's base, whatever those members'
    lifetimes (a layer's output overlapping its input, :mod:`backends.cortex_m.overlap`).
    """
    names = [b.name for b in buffers]
    if len(set(names)) != len(names):
        raise ValueError("buffer names must be unique")
    if any(a not in names or b not in names or a == b for a, b in apart):
        raise ValueError("apart pairs must name two different buffers")
    by_name = {b.name: b for b in buffers}
    chained: Chains = {}
    for chain in chains:
        if any(rel % alignment for _, rel in chain):
            raise ValueError("chain offsets must be multiples of the alignment")
        members = tuple((by_name[name], rel) for name, rel in chain)
        chained.update({name: members for name, _ in chain})
    shared = _best_first_fit(buffers, alignment, frozenset(), chained)
    best = shared
    if apart:
        constrained = _best_first_fit(buffers, alignment, frozenset(frozenset(pair) for pair in apart), chained)
        # moving a chain member alone would break its chain: then the constrained plan only
        moved = constrained if any(set(pair) & set(chained) for pair in apart) else _moved_apart(shared, apart)
        best = constrained if _extent(constrained) <= _extent(moved) else moved
    size = _align(_extent(best), alignment)
    return ArenaPlan(offsets={b.name: best[b.name][0] for b in buffers}, size=size,
                     apart_cost=max(0, size - _align(_extent(shared), alignment)))


def live_bytes_bound(buffers: Sequence[Buffer], alignment: int = 1) -> int:
    """The largest total size of buffers live at one step: no plan can use less."""
    if not buffers:
        return 0
    steps = range(min(b.first for b in buffers), max(b.last for b in buffers) + 1)
    return max(sum(_align(b.size, alignment) for b in buffers if b.first <= step <= b.last) for step in steps)
