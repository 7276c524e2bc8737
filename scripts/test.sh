#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite offscreen.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen
# the bundled presets' step kernels, compiled into the kernel cache up front on both cores (a few
# seconds when warm): the window tests then wait for frames, not for numba
.venv/bin/python scripts/warm_kernels.py
# one pytest worker per core (ERGOSCOPE_TEST_WORKERS=0 runs the suite in this one process)
exec .venv/bin/python -m pytest -n "${ERGOSCOPE_TEST_WORKERS:-auto}" --maxprocesses=4 "$@"
