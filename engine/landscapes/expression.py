"""User landscapes written as expressions in ``x`` and ``y``, parsed by a whitelist.

Security model: presets are shared files, so their text is *never* handed to ``eval``, ``exec``,
``sympify`` or ``parse_expr``.  A hand-written tokenizer and recursive-descent parser accept only

* finite decimal literals, ``+ - * / **``, unary minus/plus, parentheses;
* the variables ``x`` and ``y``, the constants ``pi`` and ``e``, parameters the preset declares;
* the functions in :data:`FUNCTIONS` applied to one argument;
* ``**`` with an integer literal exponent of magnitude ≤ :data:`MAX_EXPONENT`.

Anything else raises :class:`ExpressionError` naming the token and its position.  The parse tree
is turned into sympy objects *by constructor calls* (never from text), differentiated exactly, and
printed by :func:`_to_source` into Python source that contains no character of the user's input:
variables become ``x``/``y``, parameters become ``p[k]``, numbers are re-printed with ``repr``.
That generated source is compiled once with numba.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import sympy
from numba import njit

from .base import Bounds, Landscape

MAX_EXPONENT = 1000
MAX_LENGTH = 4000
MAX_DEPTH = 64

FUNCTIONS = {
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
    "sqrt": sympy.sqrt, "tanh": sympy.tanh, "sinh": sympy.sinh, "cosh": sympy.cosh,
    "abs": sympy.Abs, "atan": sympy.atan, "arctan": sympy.atan,
}
CONSTANTS = {"pi": sympy.pi, "e": sympy.E}
VARIABLES = ("x", "y")
RESERVED = set(FUNCTIONS) | set(CONSTANTS) | set(VARIABLES)


class ExpressionError(ValueError):
    """An expression was rejected; ``position`` is the 0-based character offset of ``token``."""

    def __init__(self, message: str, token: str = "", position: int = -1):
        self.message = message
        self.token = token
        self.position = position
        where = f" at position {position}" if position >= 0 else ""
        shown = f" {token!r}" if token else ""
        super().__init__(f"{message}{shown}{where}")


@dataclass(frozen=True)
class _Token:
    kind: str  # number | name | op | lparen | rparen | end
    text: str
    position: int


_TOKEN_RE = re.compile(
    r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|[-+*/])|(?P<lparen>\()|(?P<rparen>\)))")


def tokenize(text: str) -> list[_Token]:
    """Split ``text`` into whitelisted tokens; any other character is an error."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN_RE.match(text, pos)
        if not match or match.end() == pos:
            start = pos + (len(text[pos:]) - len(text[pos:].lstrip()))
            bad = text[start]
            hint = ""
            if bad == "^":
                hint = " (use ** for powers)"
            elif bad in ".[]{}'\"_:;=,@!<>":
                hint = " (only arithmetic, x, y, parameters and named functions are allowed)"
            # Deferred: the parser reports earlier problems (e.g. an unknown name) first.
            tokens.append(_Token("error", f"unexpected character{hint}", start))
            tokens.append(_Token("end", bad, start))
            return tokens
        kind = match.lastgroup
        start = match.start(kind)
        tokens.append(_Token(kind, match.group(kind), start))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent: expr := term (±term)*; term := unary (*|/ unary)*;
    unary := (−|+) unary | power; power := atom (** signed-integer)?; atom := number | name |
    name(expr) | (expr)."""

    def __init__(self, text: str, parameters: dict[str, sympy.Symbol]):
        self.tokens = tokenize(text)
        self.index = 0
        self.parameters = parameters
        self.depth = 0
        self.used: set[str] = set()

    def peek(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind == "error":
            bad = self.tokens[self.index + 1]
            raise ExpressionError(token.text, bad.text, token.position)
        return token

    def take(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def parse(self) -> sympy.Expr:
        if self.peek().kind == "end":
            raise ExpressionError("empty expression")
        node = self.expr()
        token = self.peek()
        if token.kind != "end":
            raise ExpressionError("unexpected token", token.text, token.position)
        return node

    def _enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError("expression nested too deeply", token.text, token.position)

    def expr(self) -> sympy.Expr:
        node = self.term()
        while self.peek().kind == "op" and self.peek().text in "+-":
            op = self.take().text
            rhs = self.term()
            node = node + rhs if op == "+" else node - rhs
        return node

    def term(self) -> sympy.Expr:
        node = self.unary()
        while self.peek().kind == "op" and self.peek().text in ("*", "/"):
            op = self.take()
            rhs = self.unary()
            if op.text == "/":
                if rhs == 0:
                    raise ExpressionError("division by zero", op.text, op.position)
                node = node / rhs
            else:
                node = node * rhs
        return node

    def unary(self) -> sympy.Expr:
        token = self.peek()
        if token.kind == "op" and token.text in "+-":
            self.take()
            self._enter(token)
            node = self.unary()
            self.depth -= 1
            return -node if token.text == "-" else node
        return self.power()

    def power(self) -> sympy.Expr:
        base = self.atom()
        if self.peek().kind == "op" and self.peek().text == "**":
            op = self.take()
            exponent = self._integer_exponent(op)
            if exponent < 0 and base == 0:
                raise ExpressionError("zero to a negative power", op.text, op.position)
            return base ** exponent
        return base

    def _integer_exponent(self, op: _Token) -> int:
        # The exponent must be a literal integer, optionally signed and parenthesised: this bounds
        # the cost of symbolic differentiation and rules out fractional powers of negatives.
        start = self.index
        sign, opened = 1, 0
        while self.peek().kind in ("lparen", "op") and self.peek().text in ("(", "-", "+"):
            token = self.take()
            if token.text == "(":
                opened += 1
            elif token.text == "-":
                sign = -sign
        token = self.take()
        if token.kind != "number" or not re.fullmatch(r"\d+", token.text):
            raise ExpressionError(
                "exponent must be an integer literal (use sqrt/exp for other powers)",
                token.text or op.text, token.position if token.text else op.position)
        value = sign * int(token.text)
        if abs(value) > MAX_EXPONENT:
            raise ExpressionError(f"exponent magnitude above {MAX_EXPONENT}", token.text,
                                  token.position)
        for _ in range(opened):
            closing = self.take()
            if closing.kind != "rparen":
                raise ExpressionError("expected ')' in exponent", closing.text,
                                      closing.position)
        if self.index == start:
            raise ExpressionError("missing exponent", op.text, op.position)
        return value

    def atom(self) -> sympy.Expr:
        token = self.take()
        if token.kind == "number":
            value = float(token.text)
            if not math.isfinite(value) or len(token.text) > 40:
                raise ExpressionError("number is not a finite literal", token.text,
                                      token.position)
            if re.fullmatch(r"\d+", token.text):
                return sympy.Integer(int(token.text))
            return sympy.Float(value)
        if token.kind == "lparen":
            self._enter(token)
            node = self.expr()
            self.depth -= 1
            closing = self.take()
            if closing.kind != "rparen":
                raise ExpressionError("expected ')'", closing.text or "end of expression",
                                      closing.position)
            return node
        if token.kind == "name":
            name = token.text
            if name in FUNCTIONS:
                opening = self.take()
                if opening.kind != "lparen":
                    raise ExpressionError(f"function {name} needs '(' after it",
                                          opening.text or name, opening.position)
                self._enter(token)
                argument = self.expr()
                self.depth -= 1
                closing = self.take()
                if closing.kind != "rparen":
                    raise ExpressionError(f"function {name} takes one argument; expected ')'",
                                          closing.text or "end of expression",
                                          closing.position)
                return FUNCTIONS[name](argument)
            if self.tokens[self.index].kind == "lparen":  # raw look-ahead: report the name first
                raise ExpressionError("unknown function", name, token.position)
            if name in VARIABLES:
                return sympy.Symbol(name, real=True)
            if name in CONSTANTS:
                return CONSTANTS[name]
            if name in self.parameters:
                self.used.add(name)
                return self.parameters[name]
            raise ExpressionError("unknown name (declare parameters in [landscape.params])",
                                  name, token.position)
        if token.kind == "end":
            raise ExpressionError("expression ends too early", "", token.position)
        raise ExpressionError("unexpected token", token.text, token.position)


def parse(text: str, parameter_names: tuple[str, ...] = ()) -> sympy.Expr:
    """Parse ``text`` into a sympy expression in ``x``, ``y`` and the parameter symbols."""
    if not isinstance(text, str):
        raise ExpressionError("expression must be a string")
    symbols = {}
    for k, name in enumerate(parameter_names):
        if not re.fullmatch(r"[A-Za-z][A-Za-z_0-9]*", name) or name in RESERVED:
            raise ExpressionError("invalid parameter name", name)
        symbols[name] = sympy.Symbol(f"_p{k}", real=True)
    return _Parser(text, symbols).parse()


# --- code generation from the sympy tree (never from user text) ---------------------------------

_FUNC_SOURCE = {
    sympy.sin: "math.sin", sympy.cos: "math.cos", sympy.tan: "math.tan", sympy.exp: "math.exp",
    sympy.log: "math.log", sympy.tanh: "math.tanh", sympy.sinh: "math.sinh",
    sympy.cosh: "math.cosh", sympy.atan: "math.atan", sympy.Abs: "abs", sympy.sign: "_sign",
}


def _to_source(node: sympy.Basic, names: dict) -> str:
    if node in names:
        return names[node]
    if isinstance(node, sympy.Integer):
        return f"{float(int(node))!r}"
    if isinstance(node, sympy.Rational):
        return f"({float(node.p)!r} / {float(node.q)!r})"
    if isinstance(node, sympy.Float):
        return repr(float(node))
    if node is sympy.pi:
        return repr(math.pi)
    if node is sympy.E:
        return repr(math.e)
    if isinstance(node, sympy.Add):
        return "(" + " + ".join(_to_source(a, names) for a in node.args) + ")"
    if isinstance(node, sympy.Mul):
        return "(" + " * ".join(_to_source(a, names) for a in node.args) + ")"
    if isinstance(node, sympy.Pow):
        base, exponent = node.args
        if exponent == sympy.Rational(1, 2):
            return f"math.sqrt({_to_source(base, names)})"
        if exponent == sympy.Rational(-1, 2):
            return f"(1.0 / math.sqrt({_to_source(base, names)}))"
        if isinstance(exponent, sympy.Integer):
            return f"({_to_source(base, names)} ** {int(exponent)})"
        if exponent.is_number and exponent.is_real:
            return f"({_to_source(base, names)} ** {float(exponent)!r})"
        if base is sympy.E:
            return f"math.exp({_to_source(exponent, names)})"
        raise ExpressionError(f"cannot compile power {node}")
    if isinstance(node, sympy.DiracDelta):
        return "0.0"  # derivative of sign(): zero almost everywhere
    if isinstance(node, sympy.Function) and node.func in _FUNC_SOURCE:
        (argument,) = node.args
        return f"{_FUNC_SOURCE[node.func]}({_to_source(argument, names)})"
    raise ExpressionError(f"cannot compile sub-expression {node}")


@njit(cache=True, nogil=True, inline="always")
def _sign(v):
    return 1.0 if v > 0 else (-1.0 if v < 0 else 0.0)


def generated_source(expr: sympy.Expr, n_params: int) -> str:
    """Python source of ``func(x, y, p) -> (f, fx, fy, fxx, fxy, fyy)`` for ``expr``."""
    x, y = sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)
    fx, fy = sympy.diff(expr, x), sympy.diff(expr, y)
    outputs = [expr, fx, fy, sympy.diff(fx, x), sympy.diff(fx, y), sympy.diff(fy, y)]
    temporaries, reduced = sympy.cse(outputs, symbols=sympy.numbered_symbols("_t"))
    names: dict = {x: "x", y: "y"}
    names.update({sympy.Symbol(f"_p{k}", real=True): f"p[{k}]" for k in range(n_params)})
    lines = ["def landscape(x, y, p):"]
    for symbol, value in temporaries:
        code = _to_source(value, names)
        names[symbol] = str(symbol)
        lines.append(f"    {symbol} = {code}")
    lines.append("    return (" + ", ".join(f"float({_to_source(r, names)})" for r in reduced) + ")")
    return "\n".join(lines)


def compile_expression(text: str, params: dict[str, float] | None = None,
                       bounds: Bounds = ((-3.0, 3.0), (-3.0, 3.0))) -> Landscape:
    """Parse, differentiate and compile ``text``; raises :class:`ExpressionError`."""
    params = dict(params or {})
    names = tuple(params)
    expr = parse(text, names)
    if not (expr.free_symbols & {sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)}):
        raise ExpressionError("expression does not depend on x or y")
    source = generated_source(expr, len(names))
    namespace = {"math": math, "_sign": _sign}
    # ``source`` is produced by _to_source from the validated tree; it holds no user text.
    exec(compile(source, "<ergoscope-landscape>", "exec"), namespace)  # noqa: S102
    func = njit(nogil=True)(namespace["landscape"])
    landscape = Landscape("expr", func, names, tuple(float(v) for v in params.values()), bounds,
                          text, extras={"source": source})
    probe = func(0.1234, -0.0567, np.array(landscape.default_params, dtype=np.float64))
    if len(probe) != 6:  # pragma: no cover - guards the generator itself
        raise ExpressionError("internal: generated function has the wrong arity")
    return landscape
