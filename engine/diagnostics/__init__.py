"""Diagnostics of ensemble runs: structure analysis, basins, Kramers times (docs/science.md)."""
