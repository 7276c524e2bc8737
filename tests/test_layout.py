"""The engine's layout keeps its jobs apart: no function under engine/ longer than the limit
below (a long function is several jobs; split it into named helpers, numba ``inline='always'``
ones inside kernels), and the simulation class stays the small coordinator it was redesigned
to be (stepping and the public surface; state, reporters, kernels and kinds live elsewhere)."""
import ast

from tests.conftest import ROOT

MAX_FUNCTION_LINES = 120
MAX_SIMULATION_LINES = 300


def _long_functions(limit: int) -> list[str]:
    found = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} "
                                 f"({length} lines)")
    return found


def test_no_engine_function_is_longer_than_the_limit():
    assert not _long_functions(MAX_FUNCTION_LINES)


def test_the_check_finds_a_long_function():
    assert _long_functions(20), "the scan must see the engine's functions"


def test_the_simulation_module_stays_small():
    lines = (ROOT / "engine" / "simulation.py").read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_SIMULATION_LINES, lines
