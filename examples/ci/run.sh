#!/usr/bin/env bash
# The steps of fpga-bitstream.yml, run here: a Brevitas W4A4 MLP becomes an iCE40 UP5K bitstream
# whose RTL is checked bit for bit against edgec's integer reference. Run it in an empty
# working directory (it writes model.onnx, samples.npy and out/ there) with edgec's virtual
# environment active, or set PYTHON and EDGEC. Needs yosys, nextpnr-ice40, icepack and iverilog
# (scripts/setup.sh installs them).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
EDGEC=${EDGEC:-edgec}
PYTHON=${PYTHON:-python}

"$PYTHON" "$HERE/make_model.py"
"$EDGEC" compile model.onnx --target ice40-up5k -o out
"$EDGEC" run out --input samples.npy --check
ls -l out/*.bin out/report.json
