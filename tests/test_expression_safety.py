"""The expression parser accepts a whitelist and rejects everything else without running it."""
import os

import pytest

from engine.landscapes import ExpressionError, compile_expression, parse
from engine.presets import PresetError, loads


@pytest.mark.parametrize("text,token,position", [
    ("__import__('os').system('touch /tmp/ergoscope_pwned')", "__import__", 0),
    ("x.__class__", ".", 1),
    ("lambda: x", "lambda", 0),
    ("foo * x", "foo", 0),
    ("x ** 1001", "1001", 5),
    ("x ** 2.5", "2.5", 5),
    ("x ** y", "y", 5),
    ("x ^ 2", "^", 2),
    ("sin(x, y)", ",", 5),
    ("open(x)", "open", 0),
    ("1e400 * x", "1e400", 0),
    ("[x for x in y]", "[", 0),
    ("x; y", ";", 1),
    ("x +", "", 3),
    ("(x + y", "end of expression", 6),
    ("x @ y", "@", 2),
    ("'x'", "'", 0),
    ("exec(x)", "exec", 0),
    ("eval(x)", "eval", 0),
])
def test_unsafe_or_invalid_expressions_are_rejected(text, token, position):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert info.value.token == token
    assert info.value.position == position
    assert not os.path.exists("/tmp/ergoscope_pwned")


def test_deep_nesting_is_rejected_not_a_recursion_error():
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse("(" * 500 + "x" + ")" * 500)


def test_constant_expression_rejected():
    with pytest.raises(ExpressionError, match="does not depend"):
        compile_expression("2 + pi")


def test_parameter_names_are_validated():
    with pytest.raises(ExpressionError):
        parse("x", ("sin",))
    with pytest.raises(ExpressionError):
        parse("x", ("__class__",))


def test_preset_error_names_file_key_token_and_position():
    text = 'name = "bad"\n[landscape]\nexpr = "x**2 + os.system(1)"\n'
    with pytest.raises(PresetError) as info:
        loads(text, "shared/bad.toml")
    message = str(info.value)
    assert "shared/bad.toml" in message
    assert "landscape.expr" in message
    assert "'os'" in message and "position 7" in message


def test_accepts_the_documented_grammar():
    for text in ["(x**2-1)**2 + 0.5*y**2 + 0.3*x", "-x**2", "x**-2 + 1", "x**(-2) + y",
                 "2*pi*e*x", "1.5e-3*x + .5*y", "abs(x) + sqrt(1 + y**2)"]:
        parse(text)
    # -x**2 is -(x**2), as in Python
    assert parse("-x**2").text() == "-((x ** 2))"
