"""Diagnostics of ensemble runs (DESIGN §7): structure analysis, basins, Kramers times."""
