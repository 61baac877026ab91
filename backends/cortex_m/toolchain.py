"""Building a generated project and measuring what it costs in flash, RAM and stack.

* :func:`make` runs the project's Makefile (arm-none-eabi-gcc for the core, gcc for the
  host); a missing tool is an error that names the package to install.
* :func:`library_sizes` sums the library objects' sections (``arm-none-eabi-size -A``):
  flash = .text + .rodata + .data, of which weights and parameters are the model object's
  .rodata; static RAM = .data + .bss (the arena).
* :func:`stack_bound` is the deepest stack of a function over GCC's call graph with
  per-function frame sizes (``-fcallgraph-info=su``); C library routines called by kernels
  (memcpy, memset) are not counted, which the report says.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path

from edgec.errors import ToolchainError

CROSS_COMPILER = "arm-none-eabi-gcc"
INSTALL = {
    "arm-none-eabi-gcc": "sudo apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi",
    "arm-none-eabi-size": "sudo apt-get install binutils-arm-none-eabi",
    "make": "sudo apt-get install make",
    "gcc": "sudo apt-get install gcc",
    "qemu-system-arm": "sudo apt-get install qemu-system-arm",
    "arm-none-eabi-nm": "sudo apt-get install binutils-arm-none-eabi",
    "gdb-multiarch": "sudo apt-get install gdb-multiarch",
}

# What arm-none-eabi-gcc says without libnewlib-arm-none-eabi: no C headers, no specs files.
_NEWLIB_MISSING = re.compile(r"(stdint|string|stdio)\.h: No such file|cannot read spec file '(rdimon|nosys|nano)\.specs'")


def require(tool: str) -> str:
    """Absolute path of ``tool``, or a :class:`ToolchainError` with the install command."""
    path = shutil.which(tool)
    if path is None:
        raise ToolchainError(f"{tool} is not installed", INSTALL.get(tool, f"install {tool}"))
    return path


def make(project: Path, goal: str = "all", variant: str = "", timeout: int = 900) -> None:
    """Run ``make goal`` in ``project``; ``variant`` ``trace``/``profile`` sets TRACE=1/PROFILE=1."""
    require("make")
    require("gcc" if goal == "host" else CROSS_COMPILER)
    command = ["make", "-C", str(project), f"-j{os.cpu_count() or 2}", goal]
    if variant:
        command.append(f"{variant.upper()}=1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        output = result.stderr + result.stdout
        if goal != "host" and _NEWLIB_MISSING.search(output):
            raise ToolchainError("newlib for arm-none-eabi is missing", INSTALL["arm-none-eabi-gcc"])
        lines = [line for line in output.splitlines() if "error" in line.lower()]
        detail = lines[0].strip() if lines else (result.stderr.strip().splitlines() or ["unknown failure"])[-1]
        raise ToolchainError(f"building {project} ({goal}) failed: {detail}",
                             f"rerun 'make -C {project} {goal}' to see the whole compiler output")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Bytes of the library: flash (code, model constants, initialized data) and static RAM."""

    code: int
    model_constants: int
    kernel_constants: int
    data: int
    bss: int

    @property
    def flash(self) -> int:
        return self.code + self.model_constants + self.kernel_constants + self.data

    @property
    def static_ram(self) -> int:
        return self.data + self.bss


def _sections(size_tool: str, obj: Path) -> dict[str, int]:
    output = subprocess.run([size_tool, "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    sections: dict[str, int] = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit() and parts[0].startswith("."):
            kind = next((k for k in (".text", ".rodata", ".data", ".bss") if parts[0].startswith(k)), None)
            if kind is not None:
                sections[kind] = sections.get(kind, 0) + int(parts[1])
    return sections


def library_sizes(project: Path, model_object: str) -> Sizes:
    """Code, constants and RAM of the library's objects; ``model_object`` (the generated model
    source's stem) holds the weights and parameters, the other objects are kernels."""
    size_tool = require("arm-none-eabi-size")
    code = model_constants = kernel_constants = data = bss = 0
    for obj in sorted((project / "build").glob("*.o")):
        sections = _sections(size_tool, obj)
        code += sections.get(".text", 0)
        if obj.stem == model_object:
            model_constants += sections.get(".rodata", 0)
        else:
            kernel_constants += sections.get(".rodata", 0)
        data += sections.get(".data", 0)
        bss += sections.get(".bss", 0)
    return Sizes(code, model_constants, kernel_constants, data, bss)


_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^"]*?(?:\\n(\d+) bytes \((?:static|dynamic)[^)]*\))?" ?')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


def stack_bound(project: Path, root: str) -> int:
    """Deepest stack (bytes) of ``root`` over the call graph in the build's ``.ci`` files."""
    frames: dict[str, int] = {}
    calls: dict[str, set[str]] = {}
    for path in sorted((project / "build").glob("*.ci")):
        text = path.read_text(errors="replace")
        for title, size in _NODE.findall(text):
            if size:
                frames[title] = int(size)
        for source, target in _EDGE.findall(text):
            calls.setdefault(source, set()).add(target)
    memo: dict[str, int] = {}

    def depth(function: str, path: tuple[str, ...]) -> int:
        if function in path:
            raise ToolchainError(f"recursion through {function} in the generated code", "report this as a bug")
        if function not in memo:
            memo[function] = frames.get(function, 0) + max(
                (depth(callee, (*path, function)) for callee in calls.get(function, ())), default=0)
        return memo[function]

    return depth(root, ())
