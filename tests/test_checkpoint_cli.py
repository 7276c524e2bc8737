"""Headless checkpoints: ``run PRESET --checkpoint FILE --checkpoint-every K`` and ``run --resume
FILE --steps M``; a run of a + b steps and a run of a steps resumed for b write the same arrays."""
import json

import numpy as np
import pytest

from engine.cli import main
from tests.conftest import ROOT

SMALL = {
    "langevin": ("presets/double_well_kramers.toml", [
        "ensemble.particles=300", "run.record_every=10", "dynamics.temperature=1.0",
        "dynamics.lr=0.02", "ensemble.init.uniform=true"]),
    "ghost": ("presets/ghost_corridor.toml", ["ensemble.particles=70", "run.record_every=10",
                                              "dynamics.dataset_size=32",
                                              "dynamics.batch_size=8",
                                              "dynamics.ghost_init=0.5"]),
}


def _run(*argv) -> int:
    return main([str(a) for a in argv])


def _sets(kind):
    path, sets = SMALL[kind]
    args = [ROOT / path]
    for s in sets:
        args += ["--set", s]
    return args


def _same_outputs(a, b):
    with np.load(a) as left, np.load(b) as right:
        assert sorted(left.files) == sorted(right.files)
        for key in left.files:
            if key != "run_id":   # a fresh id per written file
                np.testing.assert_array_equal(left[key], right[key], err_msg=key)
    summary_a = json.loads(a.with_suffix(".npz.json").read_text())
    summary_b = json.loads(b.with_suffix(".npz.json").read_text())
    for summary in (summary_a, summary_b):
        summary.pop("run_id"), summary.pop("file")
    assert summary_a == summary_b


@pytest.mark.parametrize("kind", ["langevin", "ghost"])
def test_a_resumed_run_writes_what_the_uninterrupted_run_writes(tmp_path, kind):
    assert _run("run", *_sets(kind), "--steps", 57, "--quiet", "--out",
                tmp_path / "straight.npz") == 0
    checkpoint = tmp_path / "run.ckpt"
    assert _run("run", *_sets(kind), "--steps", 23, "--quiet", "--checkpoint", checkpoint,
                "--checkpoint-every", 10, "--out", tmp_path / "first.npz") == 0
    assert _run("run", "--resume", checkpoint, "--steps", 34, "--quiet", "--checkpoint",
                checkpoint, "--out", tmp_path / "resumed.npz") == 0
    _same_outputs(tmp_path / "straight.npz", tmp_path / "resumed.npz")
    with np.load(tmp_path / "resumed.npz") as data:
        assert data["steps"][-1] == 50     # frames every 10 steps
        assert data["events_total"] > 0 or kind == "ghost"   # escape tracking resumed too
    assert json.loads((tmp_path / "resumed.npz.json").read_text())["steps"] == 57
    # the checkpoint was replaced atomically: no temporaries beside it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # a checkpoint of the resumed run's end resumes for 0 more steps to the same state
    assert _run("run", "--resume", checkpoint, "--steps", 0, "--quiet", "--out",
                tmp_path / "again.npz") == 0
    _same_outputs(tmp_path / "straight.npz", tmp_path / "again.npz")


def test_the_periodic_checkpoints_are_taken_every_k_steps(tmp_path):
    from engine.checkpoint import load_checkpoint
    checkpoint = tmp_path / "c.npz"
    assert _run("run", *_sets("langevin"), "--steps", 25, "--quiet", "--checkpoint", checkpoint,
                "--checkpoint-every", 10, "--out", tmp_path / "o.npz") == 0
    assert load_checkpoint(checkpoint).step == 25    # the last one: the run's end


def test_another_version_or_a_corrupt_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    checkpoint = tmp_path / "run.ckpt"
    assert _run("run", *_sets("langevin"), "--steps", 5, "--quiet", "--checkpoint", checkpoint,
                "--out", tmp_path / "o.npz") == 0
    capsys.readouterr()
    # another engine version
    with np.load(checkpoint) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["__meta__"]))
    meta["engine"] = "0.0.1-other"
    arrays["__meta__"] = np.array(json.dumps(meta))
    other = tmp_path / "other.ckpt"
    with open(other, "wb") as handle:
        np.savez(handle, **arrays)
    # a truncated file, and a file that is no checkpoint at all
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(checkpoint.read_bytes()[:5000])
    text = tmp_path / "text.ckpt"
    text.write_text("not a checkpoint\n")
    lacking = tmp_path / "lacking.ckpt"
    meta["engine"] = json.loads(str(np.load(checkpoint)["__meta__"]))["engine"]
    del meta["fields"]["positions"]
    arrays["__meta__"] = np.array(json.dumps(meta))
    with open(lacking, "wb") as handle:
        np.savez(handle, **arrays)
    for path, words in ((other, "engine 0.0.1-other"), (corrupt, "not a readable"),
                        (text, "not a readable"), (lacking, "positions"),
                        (tmp_path / "missing.ckpt", "not found")):
        assert _run("run", "--resume", path, "--steps", 5, "--out", tmp_path / "r.npz") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and str(path) in err, err
        assert words in err, err
        assert "Traceback" not in err
    assert not (tmp_path / "r.npz").exists()
    # resume takes its run from the checkpoint alone
    assert _run("run", ROOT / "presets/double_well_kramers.toml", "--resume", checkpoint,
                "--steps", 5, "--out", tmp_path / "r.npz") == 2
    assert "give no preset" in capsys.readouterr().err
