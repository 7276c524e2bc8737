"""ErgoScope desktop app (PyQt6 + pyqtgraph). Consumes engine snapshots; never steps itself."""
import os

# Qt's raster engine hands every large fill to a thread pool and waits for it.  On two cores,
# beside an engine that keeps both busy, that hand-off cost the window ≈ 10 % of a core and
# ≈ 8 000 context switches a second for no faster paint (Qt's own switch; set before any paint).
os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")
