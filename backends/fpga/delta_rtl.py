"""Delta-encoded weights in a matrix-vector unit: the weight stream's layout and its decoder.

A layer whose weights carry a :class:`~edgec.delta.DeltaScheme` (``MvuLayer.delta``) stores
them as the codec defines (:mod:`edgec.delta`) and decodes them on the way to the
multiply-accumulate core. Its weights are re-encoded here from the layer's matrix, in the
order the MVU walks it (:func:`encoded`): that is the codec's row order (``kh, kw, cin`` per
output channel for a convolution, ``K`` for a fully connected layer) except for a fully
connected layer that absorbed a ``Transpose`` (its columns are permuted to the stream's
order), whose permuted rows must be representable in the scheme too (:func:`check_layer`).

Layout (per layer, ``pe`` x ``simd`` folding, ``nf = out / pe`` neuron folds, ``sf = K / simd``
words a row, ``db`` delta bits, ``wb`` weight bits):

* the delta ROM of PE ``p`` (``<mvu>_w<p>.hex``): word ``n * sf + s`` holds the deltas of row
  ``n * pe + p``, inputs ``s * simd .. s * simd + simd - 1``, delta ``j`` at ``[j*db +: db]``;
  the same addresses and registered read as the plain weight ROMs, ``db`` bits a weight;
* the base ROM (``<mvu>_b.hex``): word ``n * segs + t`` holds segment ``t``'s base of rows
  ``n * pe + p`` for every PE, PE ``p``'s at ``[p*wb +: wb]`` (``segs`` segments a row: one for
  ``tensor``/``channel`` scope, ``ceil(K / N)`` for ``block:N``). When every base word is the
  same (a ``fixed`` tensor-scope reference, or a single word) the base is a constant in the
  decoder and no base ROM is stored;
* a segment covers whole words: ``block:N`` needs ``simd`` to divide ``N`` (or ``N >= K``);
  the folding only offers such ``simd`` (:func:`simd_fits`).

The decoder (``templates/edgec_delta_dec.v.j2``, module ``edgec_l<i>_dec``) sits between the
delta ROMs and the core and gives PE x SIMD weights per cycle, combinationally from the ROM
word (no added latency): ``fixed``: ``base + d``; running (``consecutive``, ``closed-loop``):
a prefix sum across the SIMD lanes from a carried register per PE, which holds the last
weight of the word before and is replaced by the base at each segment's first word. The
words it decodes are those the MVU consumes (``in_valid`` at an edge with ``en``), which come
in ROM order, repeated a vector; its counters follow that order. Arithmetic is modulo
``2^wb``, exact because every decoded weight (and every partial sum, which is a decoded
weight) is a ``wb``-bit weight.

:func:`memory_bits` counts the bits the layer's weight memories hold (deltas plus stored
bases) against its weights stored plain and as int8.
"""

from __future__ import annotations

import math

import numpy as np

from edgec.backends.fpga.layers import MvuLayer
from edgec.delta import EncodedWeights, encode_exact
from edgec.errors import EdgecError


def _segment_length(layer: MvuLayer) -> int:
    scheme = layer.delta
    return min(scheme.block, layer.vector_length) if scheme.scope == "block" else layer.vector_length


def simd_fits(layer: MvuLayer, simd: int) -> bool:
    """Whether ``simd`` inputs a word keep every segment of ``layer``'s rows in whole words
    (always true for a layer without delta-encoded weights)."""
    return layer.delta is None or _segment_length(layer) % simd == 0


def encoded(layer: MvuLayer) -> EncodedWeights:
    """``layer``'s weights in the MVU's column order, encoded in its scheme; an
    :class:`EdgecError` naming the layer when they are not representable that way."""
    try:
        return encode_exact(layer.weights, layer.delta, layer.weight_type)
    except EdgecError as error:
        raise EdgecError(f"layer {layer.name}: {error.problem} (read in the order of the dataflow design)",
                         error.hint) from None


def check_layer(layer: MvuLayer) -> EncodedWeights:
    """``layer``'s :func:`encoded` weights, or an :class:`EdgecError` naming ``layer`` when they
    cannot stream as the module docstring lays them out: deltas as wide as the weights, a
    folding whose words straddle segments, or weights not representable in the MVU's column
    order."""
    scheme = layer.delta
    if scheme.bits >= layer.weight_type.bits:
        raise EdgecError(f"layer {layer.name}: {scheme.bits}-bit deltas are not narrower than its "
                         f"{layer.weight_type} weights", f"use fewer than {layer.weight_type.bits} delta bits")
    if not simd_fits(layer, layer.simd):
        raise EdgecError(f"layer {layer.name}: simd {layer.simd} splits its {scheme.scope_name} segments "
                         "across weight words", f"fold it with a simd that divides {_segment_length(layer)}")
    return encoded(layer)


def base_words(layer: MvuLayer, weights: EncodedWeights) -> list[int]:
    """The base ROM's words (module docstring): ``nf * segs`` words of ``pe * wb`` bits."""
    wb, pe = layer.weight_type.bits, layer.pe
    bases = weights.bases
    return [sum((int(bases[n * pe + p, t]) & ((1 << wb) - 1)) << (p * wb) for p in range(pe))
            for n in range(layer.out_channels // pe) for t in range(bases.shape[1])]


def delta_words(layer: MvuLayer, weights: EncodedWeights, p: int) -> list[int]:
    """PE ``p``'s delta ROM words (module docstring), ``simd * db`` bits each."""
    db, simd, pe = layer.delta.bits, layer.simd, layer.pe
    deltas = weights.deltas.astype(np.int64)
    words = []
    for n in range(layer.out_channels // pe):
        for s in range(layer.vector_length // simd):
            lanes = deltas[n * pe + p, s * simd:(s + 1) * simd]
            words.append(sum((int(d) & ((1 << db) - 1)) << (j * db) for j, d in enumerate(lanes)))
    return words


def decoder_view(layer: MvuLayer, module: str, bases: list[int], base_file: str) -> dict:
    """The constants of ``edgec_delta_dec.v.j2`` for ``layer`` with base ROM words ``bases``
    (a constant base when they are all equal; else read from ``base_file``)."""
    scheme, simd = layer.delta, layer.simd
    sf = layer.vector_length // simd
    wps = _segment_length(layer) // simd
    const_base = len(set(bases)) == 1
    running = scheme.running
    return {"module": module, "name": layer.name, "index": layer.index, "description": scheme.describe(),
            "pe": layer.pe, "simd": simd, "wb": layer.weight_type.bits, "db": scheme.bits, "running": running,
            "sf": sf, "wps": wps, "wsw": max(1, (wps - 1).bit_length()), "sw": max(1, (sf - 1).bit_length()),
            "nseg": len(bases), "segw": max(1, (len(bases) - 1).bit_length()),
            "row_counter": wps > 1 and sf % wps != 0, "const_base": bases[0] if const_base else None,
            "base_file": base_file, "carry": running and wps > 1,
            "stateful": not const_base or (running and wps > 1)}


def memory_bits(layer: MvuLayer) -> dict:
    """Bits of ``layer``'s weight memories: ``delta_bits`` (the delta ROMs), ``base_bits`` (the
    base ROM, 0 when the base is a constant), their sum ``weight_memory_bits``, and beside them
    ``plain_bits`` (the same weights stored at their own width) and ``int8_bits``."""
    weights = encoded(layer)
    count = layer.out_channels * layer.vector_length
    bases = base_words(layer, weights)
    base_bits = 0 if len(set(bases)) == 1 else len(bases) * layer.pe * layer.weight_type.bits
    delta_bits = count * layer.delta.bits
    return {"scheme": layer.delta.describe(), "delta_bits": delta_bits, "base_bits": base_bits,
            "weight_memory_bits": delta_bits + base_bits, "plain_bits": count * layer.weight_type.bits,
            "int8_bits": count * 8,
            "segments": layer.out_channels * math.ceil(layer.vector_length / _segment_length(layer))}
