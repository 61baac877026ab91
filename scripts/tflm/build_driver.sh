#!/usr/bin/env bash
# Builds operator_driver (TFLM's reference kernels on the host) for make_goldens.py.
#
# Usage: scripts/tflm/build_driver.sh TFLM_CHECKOUT OUTPUT
# TFLM_CHECKOUT is a tflite-micro tree (the revision ../shared/benchmarks/peers.md names)
# whose Makefile has fetched its third-party downloads; OUTPUT is the driver to write.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 TFLM_CHECKOUT OUTPUT" >&2
  exit 2
fi
tflm=$(cd "$1" && pwd)
output=$2
make -C "$tflm" -f tensorflow/lite/micro/tools/make/Makefile TARGET=linux microlite -j"$(nproc)" >&2
library=$(ls "$tflm"/gen/linux_*/lib/libtensorflow-microlite.a | head -1)
downloads=$tflm/tensorflow/lite/micro/tools/make/downloads
g++ -std=c++17 -O2 -DTF_LITE_STATIC_MEMORY -DTF_LITE_DISABLE_X86_NEON \
  -I"$tflm" -I"$downloads/flatbuffers/include" -I"$downloads/gemmlowp" -I"$downloads/ruy" \
  "$(dirname "$0")/operator_driver.cc" "$library" -o "$output"
echo "built $output" >&2
