"""Dask preload of the sweep's local worker processes: Ctrl-C is for the command, not for them.

A terminal's Ctrl-C reaches every process of the foreground group, the LocalCluster's workers
included, which would die printing tracebacks; here they ignore it, and the command, on its
KeyboardInterrupt, closes the cluster (engine.sweep.executor)."""
from __future__ import annotations

import signal
import threading

if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
