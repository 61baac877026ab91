"""Running the harness on QEMU (or on the host) and reading back outputs and counts.

The harness (``harness/main.c``) reads samples (int8 or int16 tensors) from ``edgec_input.bin`` in the working
directory through semihosting, runs the network on each and writes ``edgec_output.bin``; on
the emulated core it prints the CMSDK APB timer ticks around ``edgec_run``. QEMU runs with
``-icount shift=6``: every guest instruction advances virtual time by 2^6 ns, and the timer
counts at ``timer_hz`` of virtual time, so

    instructions = ticks * (1e9 / timer_hz) / 2^6

(ticks / 1.6 at 25 MHz). The count is deterministic: same binary, same input, same count.
"""

from __future__ import annotations

import dataclasses
import math
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgec.backends.cortex_m.toolchain import require
from edgec.errors import ToolchainError
from edgec.target import Target

ICOUNT_SHIFT = 6
_SAMPLE = re.compile(r"edgec: sample (\d+) ticks (\d+) stack (\d+)")
_LAYER = re.compile(r"edgec: layer (\d+) ticks (\d+)")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Outputs (one row per sample: int8, or int16 when an output is), and per sample:
    instructions and stack bytes.

    ``layer_instructions`` (profile builds): instructions of each layer of the first sample,
    by layer index, in execution order.
    """

    outputs: np.ndarray
    instructions: list[int]
    stack_bytes: list[int]
    trace: bytes = b""
    layer_instructions: dict[int, int] = dataclasses.field(default_factory=dict)


def ticks_to_instructions(ticks: int, timer_hz: int) -> int:
    return round(ticks * (1e9 / timer_hz) / (1 << ICOUNT_SHIFT))


def parse_trace(data: bytes) -> list[tuple[int, np.ndarray]]:
    """(layer index, int8 output) records of an ``edgec_trace.bin`` dump, in execution order."""
    records, position = [], 0
    while position + 8 <= len(data):
        layer, size = np.frombuffer(data[position:position + 8], dtype="<u4")
        position += 8
        records.append((int(layer), np.frombuffer(data[position:position + int(size)], dtype=np.int8).copy()))
        position += int(size)
    return records


def qemu_command(target: Target, executable: Path, *options: str) -> list[str]:
    """The QEMU command line that runs ``executable`` on ``target``'s board with semihosting and
    ``-icount``; ``options`` (e.g. logging) go before ``-kernel``."""
    return [require("qemu-system-arm"), "-M", target.qemu.machine, "-nographic", "-monitor", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", f"shift={ICOUNT_SHIFT}",
            *options, "-kernel", str(executable)]


def execute(command: list[str], work: Path, samples: bytes, where: str, timeout: int) -> subprocess.CompletedProcess:
    """Run ``command`` in ``work`` with ``samples`` as ``edgec_input.bin``; a run past ``timeout``
    seconds is a :class:`ToolchainError` naming ``where`` it ran."""
    (work / "edgec_input.bin").write_bytes(samples)
    try:
        return subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"{Path(command[-1]).name} did not finish within {timeout} s on {where}",
                             "the program probably faulted; rebuild and rerun, or report the model") from None


#: The tensors of a sample or output row: (elements, dtype) each, in order.
RowLayout = list[tuple[int, type]]


def row_layout(boundaries: list[dict]) -> RowLayout:
    """The layout of the inputs or outputs a manifest lists (``dtype`` int8 unless given)."""
    return [(math.prod(b["shape"]), np.dtype(b.get("dtype", "int8")).type) for b in boundaries]


def row_bytes(rows: np.ndarray, layout: RowLayout) -> bytes:
    """The bytes of integer ``rows`` (one per sample, its tensors concatenated) as the harness
    reads them: each tensor's values in its own dtype, little-endian."""
    chunks, rows = [], np.atleast_2d(rows)
    for row in rows:
        start = 0
        for size, dtype in layout:
            chunks.append(np.ascontiguousarray(row[start:start + size], dtype=dtype).tobytes())
            start += size
    return b"".join(chunks)


def rows_from_bytes(data: bytes, layout: RowLayout) -> np.ndarray:
    """The inverse of :func:`row_bytes`: rows of int8 values, or of int16 when a tensor is int16."""
    record = sum(size * np.dtype(dtype).itemsize for size, dtype in layout)
    common = np.result_type(*(dtype for _, dtype in layout))
    rows = []
    for position in range(0, len(data) - record + 1, record):
        parts, offset = [], position
        for size, dtype in layout:
            parts.append(np.frombuffer(data, dtype=dtype, count=size, offset=offset).astype(common))
            offset += size * np.dtype(dtype).itemsize
        rows.append(np.concatenate(parts))
    return np.stack(rows) if rows else np.zeros((0, sum(size for size, _ in layout)), dtype=common)


def run(executable: Path, target: Target | None, samples: np.ndarray, inputs: RowLayout, outputs: RowLayout,
        timeout: int = 600) -> RunResult:
    """Run ``executable`` on integer ``samples`` (one row each, laid out as ``inputs``): on QEMU
    for ``target``, or natively when ``target`` is None (the host harness); the outputs come
    back laid out as ``outputs``."""
    samples = np.atleast_2d(samples)
    with tempfile.TemporaryDirectory(prefix="edgec-run-") as tmp:
        work = Path(tmp)
        command = [str(executable)] if target is None else qemu_command(target, executable)
        result = execute(command, work, row_bytes(samples, inputs), target.qemu.machine if target else "the host",
                         timeout)
        if result.returncode != 0 or "edgec: done" not in result.stdout:
            detail = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
            raise ToolchainError(f"{executable.name} failed (exit {result.returncode}): {detail}",
                                 "check the build; sanitizer reports appear on stderr for the host harness")
        data = (work / "edgec_output.bin").read_bytes()
        trace_path = work / "edgec_trace.bin"
        trace = trace_path.read_bytes() if trace_path.exists() else b""
    values = rows_from_bytes(data, outputs)
    if len(values) != len(samples):
        raise ToolchainError(f"{executable.name} produced {len(values)} outputs for {len(samples)} samples",
                             "report this as a bug")
    instructions, stacks = [], []
    for match in _SAMPLE.finditer(result.stdout):
        instructions.append(ticks_to_instructions(int(match.group(2)), target.qemu.timer_hz))
        stacks.append(int(match.group(3)))
    layers, previous = {}, 0
    first_sample = result.stdout.split("edgec: sample 1 ")[0]
    for match in _LAYER.finditer(first_sample):
        cumulative = int(match.group(2))
        if cumulative:
            layers[int(match.group(1))] = ticks_to_instructions(cumulative - previous, target.qemu.timer_hz)
            previous = cumulative
    return RunResult(values, instructions, stacks, trace, layers)
