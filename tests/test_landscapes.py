"""Exact derivatives of every landscape against central differences."""
import numpy as np
import pytest

from engine.landscapes import BUILTINS, compile_expression

EXPRESSIONS = [
    ("(x**2 - 1)**2 + 0.5*y**2 + 0.3*x", {}),
    ("a*sin(x)*cos(y) + exp(-(x**2 + y**2)/s)", {"a": 2.0, "s": 1.5}),
    ("log(1 + x**2 + y**2) + tanh(x*y) + sqrt(2 + cos(x)) / (1 + y**2)", {}),
    ("x**4/4 - x**2/2 + y**2/2 + abs(x - 5)", {}),
    ("atan(x) * cosh(y/3) + sinh(x/4) - tan(y/5)", {}),
]


def _check_derivatives(func, params, points, h=1e-5, rtol=2e-6):
    for x, y in points:
        f, fx, fy, fxx, fxy, fyy = func(x, y, params)
        num_fx = (func(x + h, y, params)[0] - func(x - h, y, params)[0]) / (2 * h)
        num_fy = (func(x, y + h, params)[0] - func(x, y - h, params)[0]) / (2 * h)
        gxp, gxm = func(x + h, y, params), func(x - h, y, params)
        gyp, gym = func(x, y + h, params), func(x, y - h, params)
        num_fxx = (gxp[1] - gxm[1]) / (2 * h)
        num_fxy = (gyp[1] - gym[1]) / (2 * h)
        num_fyx = (gxp[2] - gxm[2]) / (2 * h)
        num_fyy = (gyp[2] - gym[2]) / (2 * h)
        scale = 1.0 + abs(f) + abs(fx) + abs(fy) + abs(fxx) + abs(fyy) + abs(fxy)
        for exact, numeric in ((fx, num_fx), (fy, num_fy), (fxx, num_fxx), (fxy, num_fxy),
                               (fxy, num_fyx), (fyy, num_fyy)):
            assert abs(exact - numeric) <= rtol * scale, (x, y, exact, numeric)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_derivatives_match_central_differences(name):
    landscape = BUILTINS[name]
    rng = np.random.default_rng(1)
    (x0, x1), (y0, y1) = landscape.default_bounds
    points = np.column_stack([rng.uniform(x0, x1, 25), rng.uniform(y0, y1, 25)])
    params = landscape.param_vector()
    _check_derivatives(landscape.func, params, points)
    if name == "quadratic":  # an indefinite Hessian too
        _check_derivatives(landscape.func, landscape.param_vector({"b": 2.0, "c": -1.0}), points)


@pytest.mark.parametrize("text,params", EXPRESSIONS)
def test_expression_derivatives_match_central_differences(text, params):
    landscape = compile_expression(text, params)
    rng = np.random.default_rng(2)
    points = rng.uniform(-2, 2, (25, 2))
    _check_derivatives(landscape.func, landscape.param_vector(), points)


def test_expression_matches_builtin_double_well():
    expr = compile_expression("(x**2 - 1)**2 + k*y**2 + t*x", {"k": 0.7, "t": 0.2})
    builtin = BUILTINS["double_well"]
    for x, y in [(0.3, -0.2), (-1.1, 0.9), (1.7, 0.05)]:
        a = expr.func(x, y, expr.param_vector())
        b = builtin.func(x, y, builtin.param_vector({"kappa": 0.7, "tilt": 0.2}))
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)


def test_parameters_are_runtime_arguments():
    landscape = compile_expression("a*x**2 + y**2", {"a": 1.0})
    assert landscape.func(2.0, 0.0, np.array([1.0]))[0] == 4.0
    assert landscape.func(2.0, 0.0, np.array([3.0]))[0] == 12.0  # same compiled function


def test_muller_brown_known_values():
    mb = BUILTINS["muller_brown"]
    # published minimum (Müller & Brown 1979): (-0.558, 1.442), E ≈ -146.70
    f, fx, fy, *_ = mb.func(-0.558223634633024, 1.441725841804669, mb.param_vector())
    assert f == pytest.approx(-146.69951720995402, abs=1e-6)
    assert abs(fx) < 1e-6 and abs(fy) < 1e-6
