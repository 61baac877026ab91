"""The examples run as documented."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, needs_toolchain

EXAMPLES = REPO / "examples"


@pytest.mark.slow
@needs_toolchain
def test_the_pytorch_to_qemu_walkthrough(tmp_path):
    for name in ("digits_model.py", "walkthrough.sh"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable,
           "EDGEC": str(bin_dir / "edgec")}
    result = subprocess.run(["bash", "walkthrough.sh"], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "equal the integer reference bit for bit" in result.stdout
    assert "instructions per inference" in result.stdout
    assert "QEMU outputs equal digits_reference.npy; predicted:" in result.stdout


@pytest.mark.slow
def test_the_python_api_example(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "pytorch_digits.py"), "--output", str(tmp_path / "d.onnx")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test accuracy" in result.stdout and (tmp_path / "d.onnx").exists()


@pytest.mark.slow
@needs_toolchain
def test_the_brevitas_example(tmp_path):
    pytest.importorskip("brevitas", reason="the qonnx extra (brevitas) is not installed")
    result = subprocess.run([sys.executable, str(EXAMPLES / "brevitas_digits.py"), "--output", str(tmp_path / "p")],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "edgec reference vs Brevitas' integers: 0 of 5970 differ" in result.stdout
    assert "QEMU outputs equal the integer reference on 20 images" in result.stdout
