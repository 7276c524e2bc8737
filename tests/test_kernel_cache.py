"""Step kernels are compiled once per machine: a second process loads them from the cache."""
import json
import os
import subprocess
import sys

from tests.conftest import ROOT

_PROBE = """
import json, sys
from engine.presets import load
from engine.simulation import Simulation
sim = Simulation(load(sys.argv[1]).with_changes(ensemble={"particles": 64}))
sim.advance(5)
sim.update_params(kind="sgd")
sim.advance(5)
hits = misses = 0
for module in sorted(m for m in sys.modules if m.startswith("ergoscope_kernels.")):
    for name in ("advance_blocks", "advance_grouped_blocks", "evaluate"):
        stats = getattr(sys.modules[module], name).stats
        hits += sum(stats.cache_hits.values())
        misses += sum(stats.cache_misses.values())
print(json.dumps({"hits": hits, "misses": misses}))
"""


def _probes(cache, preset, count=1):
    """The hits and misses of ``count`` probe processes started together on ``cache``."""
    env = {**os.environ, "ERGOSCOPE_KERNEL_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, "-c", _PROBE, str(preset)], env=env,
                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(count)]
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err
    return [json.loads(out.splitlines()[-1]) for out, _ in outputs]


def _probe(cache, preset):
    return _probes(cache, preset)[0]


def test_a_second_process_loads_the_kernels_instead_of_compiling(tmp_path):
    preset = ROOT / "presets" / "double_well_kramers.toml"
    # two processes started together on an empty cache: each kernel compiles under a lock on
    # its module's file, so one of them compiles it and the other loads it from the cache
    both = _probes(tmp_path, preset, count=2)
    compiled = sum(probe["misses"] for probe in both)
    assert compiled >= 2  # (Langevin, then the minibatch copy)
    assert [probe["hits"] + probe["misses"] for probe in both] == [compiled, compiled]
    later = _probe(tmp_path, preset)
    assert later == {"hits": compiled, "misses": 0}


def test_an_expression_landscape_is_cached_under_its_own_source(tmp_path):
    preset = tmp_path / "expr.toml"
    preset.write_text('name = "e"\n[landscape]\nexpr = "(x**2 - 1)**2 + y**2/2"\n')
    assert _probe(tmp_path, preset)["misses"] >= 2
    assert _probe(tmp_path, preset)["misses"] == 0
    other = tmp_path / "other.toml"
    other.write_text('name = "o"\n[landscape]\nexpr = "(x**2 - 1)**2 + y**2/3"\n')
    assert _probe(tmp_path, other)["misses"] >= 2  # another source: another module
    # three copies per landscape: the general one (evaluation), lean, lean with minibatches
    assert len(list(tmp_path.glob("k_*.py"))) == 6
