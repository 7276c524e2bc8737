"""Real-X smoke test of the launch command: run it inside ``xvfb-run``.

    xvfb-run -a -s '-screen 0 1366x768x24' .venv/bin/python scripts/x11_smoke.py [PRESET] \\
        [--out out/x11_smoke] [--timeout 180]

Starts ``python -m app PRESET`` on Qt's xcb platform (the one a desktop uses; the offscreen
platform of the test suite needs none of the system libraries xcb loads) with ``ERGOSCOPE_SMOKE=1``,
which makes the app print "window shown", "busy: …" and "first frame" and quit shortly after the
first frame.  Screenshots of the whole screen (ImageMagick's ``import -window root``) are taken
when the window is shown (``shown.png``) and after the first frame (``frame.png``).  Prints one
JSON object: the seconds from the launch to each line (measured here), the app's exit status, and
per screenshot the share of non-black pixels and the number of distinct colours; exits 0 when the
window appeared, drew a first frame and neither screenshot is uniformly black, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def screenshot(path: Path) -> dict:
    """``import -window root`` into ``path``; its share of non-black pixels and colour count."""
    subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=30,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import numpy as np
    from PIL import Image
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    height, width, _ = rgb.shape
    lit = float((rgb.max(axis=2) > 16).mean())
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    return {"path": str(path), "size": [width, height], "non_black": round(lit, 4),
            "colours": int(np.unique(packed).size)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("preset", nargs="?", default="presets/double_well_kramers.toml")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "x11_smoke",
                   help="folder for shown.png and frame.png (created)")
    p.add_argument("--timeout", type=float, default=180.0,
                   help="seconds to wait for the first frame (a cold numba cache compiles first)")
    args = p.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        print("error: no DISPLAY: run this under xvfb-run", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, QT_QPA_PLATFORM="xcb", ERGOSCOPE_SMOKE="1",
               ERGOSCOPE_SMOKE_LINGER="2")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "app", args.preset], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    result: dict = {"preset": args.preset, "events": {}, "screenshots": {}}
    deadline = start + args.timeout
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            result["error"] = f"no first frame within {args.timeout:.0f} s"
            break
        if line is None:
            break
        seconds = round(time.monotonic() - start, 2)
        text = line.strip()
        key = text.split(":")[0] if text.startswith("busy") else text.rsplit(" ", 2)[0]
        result["events"].setdefault(key, seconds)
        if key == "window shown":
            time.sleep(0.5)  # let the first paint reach the X server
            result["screenshots"]["shown"] = screenshot(args.out / "shown.png")
        elif key == "first frame":
            time.sleep(0.7)
            result["screenshots"]["frame"] = screenshot(args.out / "frame.png")
    try:
        result["returncode"] = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        result["returncode"] = proc.wait()
    if stderr:
        result["stderr_tail"] = "".join(stderr)[-3000:]
    shots = result["screenshots"]
    result["ok"] = bool(
        "error" not in result and result["returncode"] == 0
        and "window shown" in result["events"] and "first frame" in result["events"]
        and all(s["non_black"] > 0.05 and s["colours"] > 8 for s in shots.values())
        and len(shots) == 2)
    print(json.dumps(result, indent=1))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
