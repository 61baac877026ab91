#!/usr/bin/env bash
# From a PyTorch model to a bit-exact run on an emulated Cortex-M4: the steps of
# examples/README.md, in order. Run from the examples/ directory with the virtual
# environment active (source ../.venv/bin/activate), or set EDGEC to the edgec command.
set -euo pipefail
EDGEC=${EDGEC:-edgec}
PYTHON=${PYTHON:-python}

"$PYTHON" digits_model.py
"$EDGEC" inspect digits_model:build --input-shape 1,1,8,8
"$EDGEC" quantize digits_model:build --input-shape 1,1,8,8 --calib digits_calib.npy -o digits_int8.onnx
"$EDGEC" run digits_int8.onnx --input digits_test.npy --output digits_reference.npy
"$EDGEC" compile digits_int8.onnx --target cortex-m4 -o digits_m4
"$EDGEC" run digits_m4 --input digits_test.npy --check --output digits_m4.npy
"$PYTHON" - <<'PY'
import sys

import numpy as np
qemu, reference = np.load("digits_m4.npy"), np.load("digits_reference.npy")
if not np.array_equal(qemu, reference):
    sys.exit("the QEMU outputs differ from the integer reference's")
labels = np.load("digits_labels.npy")
print("QEMU outputs equal digits_reference.npy; predicted:", qemu.argmax(axis=1), " labels:", labels)
PY
