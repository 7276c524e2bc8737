"""The launch command on a real X server (Xvfb, Qt's xcb platform), as a user's desktop runs it.

The rest of the suite uses Qt's offscreen platform, which loads none of the system libraries the
xcb plugin needs (libxcb-cursor0, libxcb-icccm4, …): a machine without them passed every test and
could not open the window.  ``scripts/setup.sh`` installs them with Xvfb and ImageMagick; where
they are absent this test is skipped, except under ``ERGOSCOPE_REQUIRE_X11=1`` (set by ``.ci/run``),
where it fails.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HANG_GUARD_S = 60.0
WAIT_SEEN_S = 1.0   # a gap between window and first frame that a user notices


def test_launch_opens_window_under_xvfb_and_draws(tmp_path):
    tools = [t for t in ("xvfb-run", "xauth", "Xvfb", "import") if shutil.which(t) is None]
    if tools:
        message = f"not installed: {', '.join(tools)} (bash scripts/setup.sh installs them)"
        if os.environ.get("ERGOSCOPE_REQUIRE_X11") == "1":
            pytest.fail(message)
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1366x768x24", sys.executable,
         str(ROOT / "scripts" / "x11_smoke.py"), "presets/double_well_kramers.toml",
         "--out", str(tmp_path), "--timeout", "240"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.stdout.strip(), f"no result (status {proc.returncode}): {proc.stderr[-3000:]}"
    result = json.loads(proc.stdout)
    assert result["ok"], json.dumps(result, indent=1)
    # a hang guard: the 3-s target itself is a speed figure, measured on a quiet machine by
    # benchmarks/window_start.py (this suite shares its cores with other test workers)
    assert result["events"]["window shown"] <= HANG_GUARD_S, result["events"]
    if result["events"]["first frame"] - result["events"]["window shown"] > WAIT_SEEN_S:
        # a wait the user sees: the window said why (compiling…) before the first frame
        assert result["events"].get("busy", 1e9) <= result["events"]["first frame"], result
