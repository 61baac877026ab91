"""Regenerates ``tests/data/tflm_operators.npz``: TFLM's output for every case of ``tests/tflm_cases.py``.

Usage (from the repository root, with the project's environment):
    python scripts/tflm/make_goldens.py --driver PATH/operator_driver

``operator_driver`` is ``scripts/tflm/operator_driver.cc`` built against a TFLM checkout by
``scripts/tflm/build_driver.sh``. Each case's model and inputs go to the driver; its output
bytes are stored under the case name, and the model's SHA-256 under ``<name>.sha256``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from tflm_cases import GOLDENS, cases  # noqa: E402


def run_case(driver: Path, case, work: Path) -> np.ndarray:
    model, inputs, output = work / "model.tflite", work / "input.bin", work / "output.bin"
    model.write_bytes(case.model)
    inputs.write_bytes(b"".join(np.ascontiguousarray(x).tobytes() for x in case.inputs))
    result = subprocess.run([str(driver), str(model), str(inputs), str(output)], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{case.name}: TFLM failed: {result.stderr.strip()}")
    return np.frombuffer(output.read_bytes(), dtype=case.output_dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", type=Path, required=True, help="the built operator_driver")
    args = parser.parse_args()
    stored = {}
    with tempfile.TemporaryDirectory() as work:
        for case in cases():
            stored[case.name] = run_case(args.driver, case, Path(work))
            stored[f"{case.name}.sha256"] = np.array(case.digest)
    GOLDENS.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(GOLDENS, **stored)
    print(f"wrote {len(stored) // 2} goldens to {GOLDENS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
