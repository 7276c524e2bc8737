#!/usr/bin/env bash
# Set up (if needed) and open the app on the default preset (or the preset given).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m app "${@:-presets/double_well_kramers.toml}"
