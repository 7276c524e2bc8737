"""ErgoScope engine: SGD / Langevin ensembles on 2D landscapes, their diagnostics, and the CNN lab.

No Qt here.  Typical use::

    from engine import load_preset, Simulation
    sim = Simulation(load_preset("presets/double_well_kramers.toml"))
    sim.advance(10_000)
    frame = sim.snapshot()          # read-only numpy arrays
"""
