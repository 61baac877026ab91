"""The FPGA examples run as documented: the CI pipeline example (examples/ci/) and the
Brevitas example for an FPGA target.

The fast test reads the workflow file as text (PyYAML is not among edgec's dependencies) and
checks that it runs the very commands of ``run.sh``; the slow ones run ``run.sh`` and the
Brevitas example through the whole open iCE40 flow (minutes: place and route dominates).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

CI = REPO / "examples" / "ci"
WORKFLOW = CI / "fpga-bitstream.yml"
CHECK_LINE = "check: all 20 outputs equal the integer reference bit for bit"
DEBIAN_TOOLS = ("yosys", "nextpnr-ice40", "fpga-icestorm", "iverilog", "verilator")
ICE40_TOOLS = ("yosys", "nextpnr-ice40", "icepack", "iverilog", "vvp")
needs_ice40_flow = pytest.mark.skipif(not all(shutil.which(t) for t in ICE40_TOOLS),
                                      reason=f"the iCE40 flow needs {', '.join(ICE40_TOOLS)}")


def run_sh_commands() -> list[str]:
    """The commands ``run.sh`` runs, written as the workflow writes them (``python``, ``edgec``,
    from the directory of ``make_model.py``)."""
    commands = []
    for line in (CI / "run.sh").read_text().splitlines():
        if line.startswith(('"$PYTHON" ', '"$EDGEC" ', "ls ")):
            commands.append(line.replace('"$PYTHON" "$HERE/', "python ").replace('.py"', ".py")
                            .replace('"$EDGEC" ', "edgec "))
    return commands


def workflow_steps(text: str) -> list[dict[str, str]]:
    """The steps of the workflow's one job, read by indentation: each a dict of its keys' text,
    the keys of a nested mapping (``with:``) flattened into it, a block scalar (``|``, ``>-``)
    joined with newlines (literal) or spaces (folded)."""
    lines = text.splitlines()
    steps: list[dict[str, str]] = []
    key, key_indent, style = None, 0, None
    for line in lines[lines.index("    steps:") + 1:]:
        if not line.strip():
            continue
        if line.startswith("      - "):
            steps.append({})
            line = "        " + line[len("      - "):]
        indent = len(line) - len(line.lstrip())
        if style is not None and indent > key_indent:
            joined = steps[-1][key]
            steps[-1][key] = line.strip() if not joined else joined + ("\n" if style == "|" else " ") + line.strip()
            continue
        name, _, value = line.strip().partition(":")
        key, key_indent, value = name, indent, value.strip()
        style = value if value in ("|", ">-", ">") else None
        if value:
            steps[-1][key] = "" if style else value
    return steps


def test_workflow_runs_the_commands_of_run_sh():
    text = WORKFLOW.read_text()
    assert "\t" not in text
    assert [line for line in text.splitlines() if line and not line.startswith((" ", "#"))] == [
        "name: fpga-bitstream", "on:", "jobs:"]
    steps = workflow_steps(text)
    runs = [step["run"] for step in steps if "run" in step]
    # Tools from Debian, then edgec from scripts/setup.sh.
    install = next(run for run in runs if "nextpnr-ice40" in run)
    assert all(re.search(rf"\b{tool}\b", install) for tool in DEBIAN_TOOLS)
    assert any("./scripts/setup.sh" in run for run in runs[runs.index(install):])
    # The pipeline's own commands: those of run.sh, in its order, from examples/ci/.
    commands = run_sh_commands()
    assert len(commands) == 4 and commands[1] == "edgec compile model.onnx --target ice40-up5k -o out"
    ours = [step for step in steps if step.get("run") in commands]
    assert [step["run"] for step in ours] == commands
    assert {step.get("working-directory") for step in ours} == {"examples/ci"}
    assert (REPO / ours[0]["working-directory"] / "make_model.py").is_file()
    upload = next(step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["path"].split() == ["examples/ci/out/*.bin", "examples/ci/out/report.json"]
    assert steps.index(upload) > steps.index(ours[-1])


def _environment() -> dict[str, str]:
    bin_dir = Path(sys.executable).parent
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable,
            "EDGEC": str(bin_dir / "edgec")}


@pytest.mark.slow
@needs_ice40_flow
def test_the_ci_pipeline_locally(tmp_path):
    pytest.importorskip("brevitas", reason="the qonnx extra (brevitas) is not installed")
    result = subprocess.run(["bash", str(CI / "run.sh")], cwd=tmp_path, env=_environment(), capture_output=True,
                            text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    assert CHECK_LINE in result.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["bitstream"] == "model.bin" and report["target"] == "ice40-up5k"
    assert [p.name for p in (tmp_path / "out").glob("*.bin")] == ["model.bin"]
    assert (tmp_path / "out" / "model.bin").stat().st_size > 100_000  # a whole UP5K image
    assert (tmp_path / "samples.npy").is_file() and (tmp_path / "model.onnx").is_file()


@pytest.mark.slow
@needs_ice40_flow
def test_the_brevitas_example_on_ice40(tmp_path):
    pytest.importorskip("brevitas", reason="the qonnx extra (brevitas) is not installed")
    output = tmp_path / "p"
    result = subprocess.run([sys.executable, str(REPO / "examples" / "brevitas_digits.py"), "--output", str(output),
                             "--target", "ice40-up5k"], env=_environment(), capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "edgec reference vs Brevitas' integers: 0 of 5970 differ" in result.stdout
    assert f"wrote {output}: ice40-up5k (iCE40UP5K-SG48)" in result.stdout
    assert "RTL simulation outputs equal the integer reference on 20 images" in result.stdout
    report = json.loads((output / "report.json").read_text())
    assert (output / report["bitstream"]).is_file()
