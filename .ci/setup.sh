#!/usr/bin/env bash
# Set up microtile on a fresh Debian machine with Python 3.11:
#   Debian packages: the Arm toolchain + newlib, QEMU, make, a host C compiler;
#   a virtual environment .venv with microtile installed (editable).
# Usage: bash .ci/setup.sh          (the compiler)
#        bash .ci/setup.sh test     (plus everything the test suite needs)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
need=()
for tool in arm-none-eabi-gcc qemu-system-arm make cc; do
  command -v "$tool" >/dev/null 2>&1 || need+=("$tool")
done
[ -f /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -d /usr/lib/arm-none-eabi/newlib ] || need+=(newlib)
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need+=(venv)
if [ "${#need[@]}" -gt 0 ]; then
  echo "[setup] installing Debian packages (missing: ${need[*]})"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends \
    gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm make gcc libc6-dev python3-venv >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  python3 -m venv .venv
fi
extras=""
if [ "${1:-}" = "test" ]; then extras="[test,onnx,torch,plot,nas]"; fi
# constraints.txt pins every dependency (and pip and the build backend): reproducible installs.
export PIP_CONSTRAINT="$PWD/constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1
echo "[setup] pip install -e .${extras} (pinned by constraints.txt)"
.venv/bin/python -m pip install -q "pip==$(sed -n 's/^pip==//p' constraints.txt)" >/dev/null 2>&1 || true
log=$(mktemp)
if ! .venv/bin/python -m pip install -q -e ".${extras}" >"$log" 2>&1; then
  cat "$log"; rm -f "$log"; echo "[setup] pip install failed" >&2; exit 1
fi
rm -f "$log"
echo "[setup] ready: $(.venv/bin/microtile --version), arm-none-eabi-gcc $(arm-none-eabi-gcc -dumpversion), $(qemu-system-arm --version | head -1)"
