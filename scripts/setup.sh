#!/usr/bin/env bash
# Create .venv and install ErgoScope with its test tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch: the CPU wheel pinned in constraints-cpu.txt (no 5 GB CUDA download on CPU machines).
# Set ERGOSCOPE_TORCH=any to let pip pick torch freely (e.g. a CUDA build on a GPU machine).
CONSTRAINT=()
if [ "${ERGOSCOPE_TORCH:-cpu}" = "cpu" ]; then
  CONSTRAINT=(-c constraints-cpu.txt)
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "${CONSTRAINT[@]}" -e ".[test]"
