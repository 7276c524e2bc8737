"""Transition paths and committors on a 2D landscape (issue 25).

* :mod:`.mep` — minimum-energy paths by the simplified string method (E, Ren & Vanden-Eijnden
  2007) with a climbing image (Henkelman, Uberuaga & Jónsson 2000) that converges to the saddle.
* :mod:`.committor` — the backward Kolmogorov equation ``T Δq − ∇f·∇q = 0`` on a cell-centred
  grid (square-root-approximation finite volumes, reflecting outer boundary), and from ``q`` the
  transition-path-theory reactive density, current and rate (E & Vanden-Eijnden 2006;
  Metzner, Schütte & Vanden-Eijnden 2009), and the spectral gap of the discretised generator.
* :mod:`.cloud` — the same quantities measured from the particles: the empirical committor per
  cell, reactive segments, and the discrete trajectories behind :mod:`.msm`.
* :mod:`.msm` — a small reversible Markov state model and its implied time scales
  (Prinz et al. 2011).
* :mod:`.report` — ``python -m engine paths`` (JSON + NPZ).

Nothing here imports Qt.
"""
