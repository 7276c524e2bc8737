#!/usr/bin/env bash
# Create .venv and install ErgoScope with its test tools. Idempotent, and fast when nothing changed:
#
# 1. System libraries (Debian/Ubuntu): the shared libraries Qt's xcb platform plugin loads to open
#    a window on a real X server (the offscreen tests do not need them, which is how they went
#    missing), plus Xvfb, xauth and ImageMagick for the real-X smoke test.  Installed with apt-get
#    when run as root; otherwise the exact `sudo apt-get install …` command is printed and setup
#    goes on.  Checked with one dpkg-query call; apt is not touched when all are present.
#    ERGOSCOPE_SYSTEM_PACKAGES=skip skips this step (e.g. on other distributions).
# 2. Python: `pip install -e ".[test]"` into .venv, constrained to the CPU build of torch.  pip runs
#    only when pyproject.toml, constraints-cpu.txt or ERGOSCOPE_TORCH changed since the last
#    successful install (a hash stamped in .venv/.ergoscope-installed); ERGOSCOPE_REINSTALL=1
#    forces it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# --- 1. system libraries -------------------------------------------------------------------------
# What libqxcb.so and the Qt libraries it loads link against (checked with ldd and under Xvfb with
# QT_QPA_PLATFORM=xcb, PyQt6 6.11 / Qt 6.11): libxcb-xinerama0 is not among them (Qt 6 uses RandR).
# "a|b": either package (Ubuntu 24.04 renamed some libraries with a t64 suffix).
QT_XCB_PACKAGES=(
  libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xkb1
  libxcb-randr0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 libxcb-render0
  libx11-xcb1 libxkbcommon-x11-0 libxkbcommon0 libegl1 libgl1 libfontconfig1 libfreetype6
  "libdbus-1-3|libdbus-1-3t64" "libglib2.0-0|libglib2.0-0t64"
)
SMOKE_TEST_PACKAGES=(xvfb xauth imagemagick)

system_packages() {
  [ "${ERGOSCOPE_SYSTEM_PACKAGES:-auto}" = "skip" ] && return 0
  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "setup: not a Debian/Ubuntu system: make sure Qt's xcb libraries (libxcb-cursor, " \
         "libxcb-icccm, libxcb-keysyms, libxkbcommon-x11, EGL, GL, fontconfig) are installed" >&2
    return 0
  fi
  local specs=("${QT_XCB_PACKAGES[@]}" "${SMOKE_TEST_PACKAGES[@]}") names=() spec alt
  for spec in "${specs[@]}"; do names+=(${spec//|/ }); done
  local installed
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${names[@]}" 2>/dev/null |
              awk '$2 ~ /^.i/ {print $1}' || true)  # (unknown alternatives: status 1)
  local missing=()
  for spec in "${specs[@]}"; do
    local found=""
    for alt in ${spec//|/ }; do
      if grep -qx "$alt" <<<"$installed"; then found=1; break; fi
    done
    [ -n "$found" ] && continue
    # the first alternative this system's apt knows (e.g. libglib2.0-0t64 on Ubuntu 24.04)
    local pick=${spec%%|*}
    if command -v apt-cache >/dev/null 2>&1; then
      for alt in ${spec//|/ }; do
        if apt-cache show "$alt" >/dev/null 2>&1; then pick=$alt; break; fi
      done
    fi
    missing+=("$pick")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local command="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system libraries for Qt's xcb platform and the smoke test: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
      apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" \
        >/dev/null || echo "setup: could not install; run: sudo $command" >&2
    fi
  else
    echo "setup: the window needs system libraries that are not installed; run:" >&2
    echo "  sudo $command" >&2
  fi
}
system_packages

# --- 2. Python environment -----------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch: the CPU wheel pinned in constraints-cpu.txt (no 5 GB CUDA download on CPU machines).
# Set ERGOSCOPE_TORCH=any to let pip pick torch freely (e.g. a CUDA build on a GPU machine).
CONSTRAINT=()
if [ "${ERGOSCOPE_TORCH:-cpu}" = "cpu" ]; then
  CONSTRAINT=(-c constraints-cpu.txt)
fi
STAMP=.venv/.ergoscope-installed
WANT=$( { cat pyproject.toml constraints-cpu.txt; echo "torch=${ERGOSCOPE_TORCH:-cpu}"; \
          pwd; .venv/bin/python -c "import sys; print(sys.version)"; } | sha256sum | cut -d' ' -f1)
if [ "${ERGOSCOPE_REINSTALL:-0}" = "1" ] || [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  rm -f "$STAMP"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${CONSTRAINT[@]}" -e ".[test]"
  echo "$WANT" > "$STAMP"
fi
