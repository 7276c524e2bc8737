#!/usr/bin/env bash
# Set up (if needed) and open the app on the default preset, or on the preset given (2D or CNN
# lab; options as for `python -m app --help`, e.g. --run to train a CNN-lab preset at once).
# scripts/setup.sh returns in a fraction of a second when nothing changed (no apt, no pip), so
# the window is up in ≈ 2 s; it says "compiles its step kernel" until the first frame.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m app "$@"
