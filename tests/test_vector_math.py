"""engine.vector_math against libm: the accuracy its docstring states, the clamps, and that the
quadrant logic of vsincos is right on every quadrant boundary."""
import math

import numpy as np
from numba import njit

from engine.vector_math import vexp, vsincos

FLAGS = {"contract", "arcp", "nsz"}   # the flags the ghost kernel compiles them with


@njit(fastmath=FLAGS)
def _exp_all(x, out):
    for i in range(x.size):   # an elementwise loop, as in the kernel: the vectorised code path
        out[i] = vexp(x[i])


@njit(fastmath=FLAGS)
def _sincos_all(x, cos_out, sin_out):
    for i in range(x.size):
        c, s = vsincos(x[i])
        cos_out[i] = c
        sin_out[i] = s


def _exp(x):
    out = np.empty_like(x)
    _exp_all(x, out)
    return out


def _sincos(x):
    c, s = np.empty_like(x), np.empty_like(x)
    _sincos_all(x, c, s)
    return c, s


def test_exp_relative_error_is_below_4e16_on_its_whole_range():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.uniform(-708, 709, 200_000), rng.uniform(-1, 1, 200_000),
                        np.arange(-708, 709, 0.5 * math.log(2))])   # reduction boundaries
    got, want = _exp(x), np.exp(x)
    assert np.max(np.abs(got / want - 1.0)) < 4e-16
    assert _exp(np.array([0.0]))[0] == 1.0


def test_exp_clamps_instead_of_overflowing():
    got = _exp(np.array([-1e4, -800.0, 800.0, 1e4]))
    assert np.all(np.isfinite(got))
    assert got[0] == got[1] == _exp(np.array([-708.0]))[0] > 0.0
    assert got[2] == got[3] == _exp(np.array([709.0]))[0]


def test_sincos_absolute_error_is_below_3e16_and_quadrants_are_right():
    rng = np.random.default_rng(2)
    quarter = 0.25 * math.pi
    x = np.concatenate([rng.uniform(-1e5, 1e5, 200_000), rng.uniform(-20, 20, 200_000),
                        quarter * np.arange(-400, 401),              # every quadrant boundary
                        quarter * np.arange(-400, 401) + 1e-9])
    c, s = _sincos(x)
    assert np.max(np.abs(c - np.cos(x))) < 3e-16
    assert np.max(np.abs(s - np.sin(x))) < 3e-16
    c0, s0 = _sincos(np.array([0.0]))
    assert (c0[0], s0[0]) == (1.0, 0.0)
    # odd/even symmetry holds exactly: the reduction is symmetric in θ
    c_neg, s_neg = _sincos(-x[:1000])
    np.testing.assert_array_equal(c_neg, c[:1000])
    np.testing.assert_array_equal(s_neg, -s[:1000])
