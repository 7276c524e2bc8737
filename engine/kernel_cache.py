"""Step kernels compiled once per machine, not once per process.

numba's ``cache=True`` cannot keep a kernel that closes over another jitted function (the
landscape), so kernels built as closures recompiled in every process (≈ 6 s each).  Here the
kernels live in a template module, :mod:`engine.step_kernels`, whose landscape is a module
global; for each landscape and copy variant a copy of the template with that binding is written
into the cache folder and imported, and numba caches its machine code beside it.  A later
process writing the same text finds the file (and numba its cached code) and loads instead of
compiling.

The file name is a hash of everything the machine code depends on — the template, the binding,
the engine modules the kernels call into, the landscape's own source, numba's and Python's
versions — so a change to any of them gives a new file instead of a stale cache.  Landscapes
whose function is neither module-level nor generated (e.g. a classifier closing over its data)
get the same template, uncached.

A kernel compiles (or loads) under an exclusive lock on its module's file, so that when several
processes need the same kernel at once (the test workers, the warm-up's), one compiles it and the
others load it from numba's cache when it is written.

The folder is ``$ERGOSCOPE_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/ergoscope/kernels``, else
``~/.cache/ergoscope/kernels``.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
import threading
import types
from pathlib import Path

import numba
from numba.core.dispatcher import Dispatcher

try:
    import fcntl
except ImportError:  # not POSIX: processes may compile the same kernel side by side
    fcntl = None

from .landscapes.base import Landscape

_TEMPLATE = Path(__file__).with_name("step_kernels.py")
_BINDING_START = "# --- binding: replaced in every generated copy"
_BINDING_END = "# --- end of binding"
# engine modules whose jitted functions the kernels call: part of every cache key
_DEPENDENCIES = ("dynamics.py", "rng.py", "step_kernels.py", "landscapes/expression.py",
                 "ghost.py")
_LOCK = threading.Lock()
_MODULES: dict[str, types.ModuleType] = {}


def cache_folder() -> Path:
    """Where generated kernel modules and numba's cache files are kept."""
    if os.environ.get("ERGOSCOPE_KERNEL_CACHE"):
        return Path(os.environ["ERGOSCOPE_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ergoscope" / "kernels"


def _binding(landscape: Landscape) -> tuple[str, str, bool]:
    """(source that defines ``func``, the source the landscape depends on, cacheable)."""
    func = landscape.func
    if "binding" in landscape.extras:  # the landscape says how to define itself
        return landscape.extras["binding"], "", True
    if "source" in landscape.extras:  # a generated expression: its source goes in the module
        source = landscape.extras["source"]
        return (source + "\n\n\nfrom engine.landscapes.expression import _sign  # noqa: E402\n"
                "func = njit(nogil=True, error_model='numpy', cache=True)(landscape)\n",
                "", True)
    py_func = getattr(func, "py_func", None)
    if py_func is not None and "<locals>" not in py_func.__qualname__:
        module = sys.modules[py_func.__module__]
        return (f"from {py_func.__module__} import {py_func.__qualname__} as func  # noqa\n",
                inspect.getsource(module), True)
    return "func = None  # set on the module before the first compile\n", "", False


def _module_text(binding: str, constants: dict[str, bool],
                 template_path: Path = _TEMPLATE) -> str:
    template = template_path.read_text(encoding="utf-8")
    start = template.index(_BINDING_START)
    end = template.index("\n", template.index(_BINDING_END)) + 1
    lines = [f"{name} = {value!r}" for name, value in constants.items()]
    block = "\n".join([_BINDING_START, *lines, binding.rstrip(), _BINDING_END]) + "\n"
    return template[:start] + block + template[end:]


def _key(text: str, depends_on: str) -> str:
    digest = hashlib.sha256()
    root = Path(__file__).parent
    for name in _DEPENDENCIES:
        digest.update((root / name).read_bytes())
    for part in (text, depends_on, numba.__version__, sys.version):
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()[:24]


MAX_MODULES = 200  # generated modules kept in the folder (user expressions add one each)


def _write_once(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` atomically unless it exists: an existing file keeps its
    stamp, which numba's cache index checks."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _prune(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _prune(folder: Path) -> None:
    """Delete the oldest generated modules, and their numba cache files, beyond
    :data:`MAX_MODULES` (never rewritten, so a file's mtime is its creation time)."""
    modules = sorted(folder.glob("k_*.py"), key=lambda p: p.stat().st_mtime)
    for old in modules[:max(0, len(modules) - MAX_MODULES + 1)]:
        for cached in (folder / "__pycache__").glob(f"{old.stem}.*"):
            cached.unlink(missing_ok=True)
        old.unlink(missing_ok=True)


def _import(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class _CompileLock:
    """An exclusive lock on a generated module's file (``flock``), re-entrant within a process,
    held while one of its kernels compiles or loads: of several processes that need the same
    kernel at once (the test workers, the warm-up's), one compiles and the others then load
    what it wrote to numba's cache instead of compiling it too."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._in_process = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._in_process.acquire()
        if self._depth == 0:
            try:
                self._fd = os.open(self._path, os.O_RDONLY)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:  # no lock to be had (e.g. the folder vanished): compile unlocked
                self._release_file()
        self._depth += 1

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._release_file()
        self._in_process.release()

    def _release_file(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def around(self, compile_for_args):
        @functools.wraps(compile_for_args)
        def locked(*args, **kws):
            with self:
                return compile_for_args(*args, **kws)
        return locked


def _share_compiles(module: types.ModuleType, path: Path) -> None:
    """Compile (or load) each kernel of ``module`` under the lock of its file (numba calls a
    dispatcher's ``_compile_for_args`` only when no compiled version fits the call)."""
    if fcntl is None:
        return
    lock = _CompileLock(path)
    for value in vars(module).values():
        if isinstance(value, Dispatcher) and value.py_func.__module__ == module.__name__:
            value._compile_for_args = lock.around(value._compile_for_args)


def kernel_module(landscape: Landscape, lean: bool, with_diagnostics: bool, momentum: bool,
                  folds: bool, minibatch: bool = False) -> types.ModuleType:
    """The step kernels of ``landscape`` for one copy variant (see :mod:`engine.step_kernels`);
    imported once per process, compiled once per machine where the landscape allows."""
    constants = {"LEAN": lean, "WITH_DIAGNOSTICS": with_diagnostics, "MOMENTUM": momentum,
                 "FOLDS": folds, "MINIBATCH": minibatch}
    return template_module(landscape, _TEMPLATE, constants)


def template_module(landscape: Landscape, template: Path,
                    constants: dict[str, bool]) -> types.ModuleType:
    """A copy of the kernel template module ``template`` (a file with the binding markers of
    :mod:`engine.step_kernels`, e.g. :mod:`engine.kind_kernels`) bound to ``landscape`` and
    ``constants``: imported once per process, compiled once per machine where the landscape
    allows."""
    binding, depends_on, cacheable = _binding(landscape)
    text = _module_text(binding, constants, template)
    key = _key(text, depends_on)
    if not cacheable:
        text = text.replace("cache=True", "cache=False")
        key = f"{key}_{id(landscape.func):x}"
    with _LOCK:
        if key in _MODULES:
            return _MODULES[key]
        name = f"ergoscope_kernels.k_{key}"
        if cacheable:
            folder = cache_folder()
            try:
                path = folder / f"k_{key}.py"
                _write_once(path, text)
            except OSError:  # a read-only home: compile in this process, cache nothing
                folder = Path(tempfile.mkdtemp(prefix="ergoscope_kernels_"))
                path = folder / f"k_{key}.py"
                _write_once(path, text)
            module = _import(name, path)
            _share_compiles(module, path)
        else:
            module = types.ModuleType(name)
            module.__file__ = f"<{name}>"
            exec(compile(text, module.__file__, "exec"), module.__dict__)  # noqa: S102 - ours
            module.func = landscape.func
        _MODULES[key] = module
        return module
