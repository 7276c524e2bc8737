"""Structure analysis against known minima, saddles and barriers."""
import numpy as np
import pytest

from engine.diagnostics.structure import analyse
from tests.conftest import make_preset

# Müller & Brown (1979): minima and saddles, published to the digits below
MB_MINIMA = [(-0.558224, 1.441726, -146.699517), (0.623499, 0.028038, -108.166724),
             (-0.050011, 0.466694, -80.767818)]
MB_SADDLES = [(-0.822002, 0.624313, -40.664844), (0.212487, 0.292988, -72.248940)]


def test_double_well_structure():
    s = analyse(make_preset(landscape={"builtin": "double_well", "params": {"kappa": 0.5}},
                            dynamics={"kind": "langevin", "lr": 0.01, "temperature": 0.2}))
    xs = sorted((m.x, m.y, m.f) for m in s.minima)
    np.testing.assert_allclose(xs, [(-1, 0, 0), (1, 0, 0)], atol=1e-10)
    (saddle, pair), = s.saddles
    np.testing.assert_allclose([saddle.x, saddle.y, saddle.f], [0, 0, 1], atol=1e-10)
    np.testing.assert_allclose(saddle.hessian, [[-4, 0], [0, 1]], atol=1e-9)
    assert sorted(pair) == [0, 1]
    assert s.basin_of(np.array([[-0.5, 0.3]]))[0] != s.basin_of(np.array([[0.5, 0.3]]))[0]


def test_muller_brown_published_critical_points():
    s = analyse(make_preset(landscape={"builtin": "muller_brown"},
                            dynamics={"kind": "langevin", "lr": 1e-4, "temperature": 10.0}))
    found = sorted((m.x, m.y, m.f) for m in s.minima)
    np.testing.assert_allclose(found, sorted(MB_MINIMA), atol=2e-6)
    saddles = sorted((c.x, c.y, c.f) for c, _ in s.saddles)
    np.testing.assert_allclose(saddles, sorted(MB_SADDLES), atol=2e-6)
    for c, _ in s.saddles:
        eig = np.linalg.eigvalsh(c.hessian)
        assert eig[0] < 0 < eig[1]


def test_laplace_weights_follow_tilt():
    t = 0.1
    s = analyse(make_preset(landscape={"builtin": "double_well",
                                       "params": {"kappa": 1.0, "tilt": 0.1}},
                            dynamics={"kind": "langevin", "lr": 0.01, "temperature": t}))
    left, right = sorted(range(2), key=lambda i: s.minima[i].x)
    ratio = s.weights[left] / s.weights[right]
    ml, mr = s.minima[left], s.minima[right]
    expected = np.exp((mr.f - ml.f) / t) * np.sqrt(np.linalg.det(mr.hessian)
                                                   / np.linalg.det(ml.hessian))
    assert ratio == pytest.approx(expected, rel=1e-9)
    assert ratio > 1  # the tilt lowers the left well
