"""Which layers' constants one inference reads, observed on the emulated core.

:func:`read_layers` runs one input on the target's QEMU board with the CPU halted at reset
and gdb (``gdb-multiarch``) attached to its gdb port; it sets a read watchpoint on every
constant array and parameter block of the chosen layers (the symbols ``layer<i>`` and
``layer<i>_*`` that ``edgec_model.c`` defines, located with ``arm-none-eabi-nm``), each
deleting itself on its first hit, and runs the program to its end. A layer is *read* when
one of its watchpoints fired. QEMU checks watchpoints on every load the emulated core
makes, so a layer not reported read had none of its constants loaded by that inference:
this is how a model that branches is shown to leave the untaken branches' weights untouched.
"""

from __future__ import annotations

import re
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgec.backend import read_manifest
from edgec.backends.cortex_m.qemu import execute, qemu_command, row_bytes, row_layout
from edgec.backends.cortex_m.toolchain import make, require
from edgec.errors import ToolchainError
from edgec.target import project_target

GDB = "gdb-multiarch"
_SYMBOL = re.compile(r"^([0-9a-f]+) ([0-9a-f]+) [a-zA-Z] layer(\d+)(?:_\w+)?$")
_HIT = re.compile(r"^edgec-read (\d+)$", re.MULTILINE)


def constant_symbols(executable: Path) -> dict[int, list[tuple[int, int]]]:
    """Layer index -> (address, size) of each of its constants in ``executable``."""
    listing = subprocess.run([require("arm-none-eabi-nm"), "-S", "--defined-only", str(executable)],
                             capture_output=True, text=True, check=True).stdout
    symbols: dict[int, list[tuple[int, int]]] = {}
    for line in listing.splitlines():
        match = _SYMBOL.match(line.strip())
        if match and int(match.group(2), 16):
            symbols.setdefault(int(match.group(3)), []).append((int(match.group(1), 16), int(match.group(2), 16)))
    return symbols


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _script(port: int, watched: dict[int, list[tuple[int, int]]]) -> str:
    # gdb retries the connection (tcp auto-retry) until QEMU listens
    lines = ["set pagination off", "set confirm off", "set tcp connect-timeout 30", f"target remote 127.0.0.1:{port}"]
    number = 0
    for layer, ranges in sorted(watched.items()):
        for address, size in ranges:
            number += 1
            lines += [f"rwatch *(char (*)[{size}]) {address:#x}", "commands", "silent",
                      f'printf "edgec-read {layer}\\n"', f"delete {number}", "continue", "end"]
    return "\n".join([*lines, "continue", ""])


def read_layers(project: Path, row: np.ndarray, layers: list[int], timeout: int = 300) -> set[int]:
    """The layers among ``layers`` whose constants the inference of ``row`` (one int8 input)
    reads on the target of the compiled ``project`` (see the module docstring); its QEMU
    harness is built first if needed."""
    gdb = require(GDB)
    project = Path(project).resolve()
    make(project, "qemu")
    target = project_target(project, read_manifest(project)["target"])
    executable = project / "build" / "edgec_app.elf"
    symbols = constant_symbols(executable)
    watched = {layer: symbols[layer] for layer in layers if layer in symbols}
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="edgec-watch-") as tmp:
        work = Path(tmp)
        (work / "watch.gdb").write_text(_script(port, watched), encoding="utf-8")
        qemu = qemu_command(target, executable, "-gdb", f"tcp:127.0.0.1:{port},server=on,wait=on", "-S")
        emulator = subprocess.Popen(qemu, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            session = execute([gdb, "-batch", "-nx", "-x", str(work / "watch.gdb"), str(executable)], work,
                              row_bytes(row, row_layout(read_manifest(project)["inputs"])), "gdb", timeout)
            output = emulator.communicate(timeout=timeout)[0]
        finally:
            if emulator.poll() is None:
                emulator.kill()
                emulator.wait()
    if "edgec: done" not in output:
        detail = (session.stderr.strip() or output.strip() or "no output").splitlines()[-1]
        raise ToolchainError(f"the watched run on {target.qemu.machine} did not finish: {detail}",
                             "check that gdb-multiarch and qemu-system-arm run; rerun with a smaller model")
    return {int(layer) for layer in _HIT.findall(session.stdout)}
