"""The engine never imports the GUI: no module under engine/ imports PyQt6, pyqtgraph or app,
neither in its source (any import statement, at any depth) nor at run time."""
import ast
import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FORBIDDEN = ("PyQt6", "pyqtgraph", "app")
ENGINE_FILES = sorted((ROOT / "engine").rglob("*.py"))


def _imported_modules(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))
              and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                  "import_module", "__import__")
              and node.args and isinstance(node.args[0], ast.Constant)):
            names.append(str(node.args[0].value))
    return names


def _forbidden(name: str) -> bool:
    return name.split(".")[0] in FORBIDDEN


def test_the_walk_sees_every_kind_of_import():
    source = ("import PyQt6.QtCore\nfrom pyqtgraph import mkPen\n"
              "def f():\n    from app.worker import EngineWorker\n"
              "    importlib.import_module('app.views')\nimport numpy\n")
    found = [n for n in _imported_modules(ast.parse(source)) if _forbidden(n)]
    assert found == ["PyQt6.QtCore", "pyqtgraph", "app.worker", "app.views"]


@pytest.mark.parametrize("path", ENGINE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_engine_module_imports_the_gui(path):
    assert len(ENGINE_FILES) > 20
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    bad = [name for name in _imported_modules(tree) if _forbidden(name)]
    assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_importing_the_engine_loads_no_gui_module():
    code = ("import json, sys\nimport engine, engine.api, engine.cli, engine.simulation, "
            "engine.ghost_simulation, engine.diagnostics.structure\n"
            "print(json.dumps(sorted(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert "engine.simulation" in loaded
    assert not [m for m in loaded if _forbidden(m)]
