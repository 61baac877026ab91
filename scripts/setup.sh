#!/usr/bin/env bash
# Set up edgec on a fresh Debian/Ubuntu machine: system toolchains, then a virtual
# environment in .venv with edgec installed in editable mode and the test dependencies.
#
#   ./scripts/setup.sh            everything (needs root or sudo for the apt step)
#   EDGEC_SKIP_APT=1 ./scripts/setup.sh   Python side only
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(python3 python3-venv python3-dev gcc make cmake
                 gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)

if [ "${EDGEC_SKIP_APT:-0}" != "1" ]; then
    missing=()
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "edgec setup: installing system packages: ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first and pinned: an unpinned torch pulled in by a dependency can be a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[torch,dev]"
echo "edgec setup: done. Run the tests with: .venv/bin/python -m pytest"
