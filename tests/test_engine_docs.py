"""The usage example in the engine package's docstring runs as written."""
import doctest
import re

import engine


def _example() -> str:
    """The indented code block after ``::`` in ``engine.__doc__``."""
    doc = engine.__doc__
    block = doc.split("::", 1)[1]
    lines = [line for line in block.splitlines() if line.strip()]
    return "\n".join(re.sub(r"^    ", "", line) for line in lines if line.startswith("    "))


def test_the_package_docstring_example_runs(monkeypatch):
    from tests.conftest import ROOT
    monkeypatch.chdir(ROOT)  # the example names a bundled preset by its relative path
    code = _example()
    assert "Simulation" in code and "snapshot" in code
    namespace: dict = {}
    exec(compile(code, "<engine docstring>", "exec"), namespace)
    frame = namespace["frame"]
    assert frame.step == namespace["sim"].step > 0
    assert not frame.positions.flags.writeable


def test_the_package_docstring_has_no_failing_doctests():
    assert doctest.testmod(engine, raise_on_error=False).failed == 0
