"""ErgoScope desktop app (PyQt6 + pyqtgraph). Consumes engine snapshots; never steps itself."""
