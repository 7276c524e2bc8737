"""The CNN lab: many small ghost-head CNNs trained together with torch (see README, "CNN lab").

PyTorch's OpenMP threads spin while they wait for work by default.  On a 2-core machine where
another process is busy (the window's engine, a test run, a colleague's job) the spinning threads
take the cores from each other: ``python -m engine cnn presets/cnn_smoke.toml`` took 37 s instead
of 11 s with passive waiting, measured back to back beside two busy processes.  So passive waiting
is the default here, set before torch loads its OpenMP runtime; an ``OMP_WAIT_POLICY`` of your own
(e.g. ``ACTIVE`` on a dedicated machine) wins.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
