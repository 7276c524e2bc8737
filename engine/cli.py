"""Command line: ``python -m engine run|info|sweep|plot|ghosts|paths|cnn …`` (README,
"Headless use").

Errors in presets, expressions or arguments print one clear line on stderr and exit with 2;
no traceback.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from .presets import PresetError, apply_sets, load


def _progress_printer(label: str):
    state = {"last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - state["last"] >= 0.5 or done == total:
            state["last"] = now
            width = 30
            filled = int(width * done / max(total, 1))
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] "
                             f"{done}/{total}")
            if done == total:
                sys.stderr.write("\n")
            sys.stderr.flush()
    return report


def _overrides(args) -> list[str]:
    """--set, --steps and --seed as ``key=value`` assignments."""
    sets = list(args.set or [])
    if getattr(args, "steps", None) is not None:
        sets.append(f"run.steps={args.steps}")
    if getattr(args, "seed", None) is not None:
        sets.append(f"ensemble.seed={args.seed}")
    return sets


def _load_with_overrides(args) -> "object":
    return apply_sets(load(args.preset), _overrides(args))


def cmd_run(args) -> int:
    from .api import run_preset
    if args.resume or args.checkpoint or args.checkpoint_every or args.preset is None:
        return cmd_run_checkpointed(args)
    preset = _load_with_overrides(args)
    out = Path(args.out)
    if out.suffix not in (".npz", ".csv"):
        raise PresetError("--out", str(out), "must end in .npz or .csv")
    quiet = args.quiet or preset.run.steps < 20000
    progress = None if quiet else _progress_printer("run")
    if preset.compare:  # [[compare]]: every configuration, one file grouped per configuration
        from .compare import run_comparison
        comparison = run_comparison(preset, out=out, progress=progress)
        print(out)
        # status 3 only when every configuration diverged whole
        return min(_report_divergence(sim) for sim in comparison.simulations)
    sim = run_preset(preset, out=out, progress=progress)
    print(out)
    return _report_divergence(sim)


def cmd_run_checkpointed(args) -> int:
    """``run PRESET --checkpoint FILE [--checkpoint-every K]`` writes the run's complete state
    to FILE (atomically) every K steps and at the end; ``run --resume FILE --steps M`` goes on
    from it for M more steps (engine.checkpoint).  A run of a + b steps and a run of a steps
    resumed for b write the same arrays."""
    from .api import run_preset
    from .checkpoint import resume
    out = Path(args.out)
    if out.suffix not in (".npz", ".csv"):
        raise PresetError("--out", str(out), "must end in .npz or .csv")
    every = args.checkpoint_every
    if every is not None and (every < 1 or not args.checkpoint):
        raise PresetError("--checkpoint-every", str(every),
                          "must be >= 1" if every < 1 else "needs --checkpoint FILE")
    if args.resume is None:
        if args.preset is None:
            raise PresetError("run", "", "give a preset file, or --resume CHECKPOINT")
        preset, sim, steps = _load_with_overrides(args), None, None
        if preset.compare:
            raise PresetError(preset.source, "compare", "a side-by-side run has no "
                              "checkpoints: run it without --checkpoint")
    else:
        if args.preset is not None or args.set or args.seed is not None:
            raise PresetError("--resume", args.resume, "continues the checkpoint's own run: "
                              "give no preset, --set or --seed")
        if args.steps is None or args.steps < 0:
            raise PresetError("--resume", args.resume, "needs --steps M >= 0 (steps to add)")
        sim = resume(args.resume, args.steps)
        preset, steps = sim.preset, args.steps
    quiet = args.quiet or (preset.run.steps if steps is None else steps) < 20000
    progress = None if quiet else _progress_printer("run")
    sim = run_preset(preset, out=out, steps=steps, progress=progress, resume=sim,
                     checkpoint=args.checkpoint, checkpoint_every=every)
    print(out)
    return _report_divergence(sim)


def _report_divergence(sim) -> int:
    """One warning line when particles diverged; status 3 when all of them did."""
    from .api import divergence_summary
    d = divergence_summary(sim)
    if not d["frozen"]:
        return 0
    first = (f", the first seen by step {d['first_seen_step']}"
             if d["first_seen_step"] is not None else "")
    print(f"warning: {d['frozen']} of {d['particles']} particles diverged (their state left "
          f"the finite numbers) and were frozen{first}; they are left out of the summary",
          file=sys.stderr)
    return 3 if d["frozen"] == d["particles"] else 0


def cmd_info(args) -> int:
    import json
    from .api import structure_info
    preset = _load_with_overrides(args)
    print(json.dumps(structure_info(preset), indent=2))
    return 0


def _prepare(out) -> None:
    """Create the output's folder and check it is writable before a long computation, as
    ``run`` does (an error after the run would lose it)."""
    from .export import prepare_output
    prepare_output(out)


def _sweep_values(varies: list[str]) -> tuple[list[str], list[tuple]]:
    """``["a.b=1,2", "c.d=3,4"]`` → (["a.b", "c.d"], [(1, 3), (2, 4)]): keys varied together."""
    from .presets import parse_set
    keys, columns = [], []
    for vary in varies:
        key, raw = vary.split("=", 1) if "=" in vary else (vary, "")
        values = [parse_set(f"{key}={v}")[1] for v in raw.split(",") if v.strip()]
        if not values:
            raise PresetError("--vary", vary, "expected key.path=v1,v2,…")
        if columns and len(values) != len(columns[0]):
            raise PresetError("--vary", vary, f"has {len(values)} values where "
                                              f"{keys[0]} has {len(columns[0])}")
        keys.append(key)
        columns.append(values)
    return keys, list(zip(*columns))


def cmd_sweep(args) -> int:
    """Run the preset once per value (per tuple of values of keys varied together); tabulate
    measured MFPTs beside Kramers at the equivalent Langevin temperature.  An ``.nc`` or
    ``.zarr`` output runs the grid sweep on Dask instead (:func:`cmd_sweep_grid`)."""
    from .api import run_preset, summary
    from .export import atomic_write_text, write_json
    if Path(args.out).suffix in (".nc", ".zarr"):
        return cmd_sweep_grid(args)
    from .sweep.bundled import is_sweep_file
    if is_sweep_file(args.preset):
        raise PresetError("--out", args.out, f"{args.preset} is a sweep file: its grid sweep "
                                             "writes FILE.nc or FILE.zarr")
    for option, value in (("--grid", args.grid), ("--seeds", args.seeds),
                          ("--workers", args.workers), ("--scheduler", args.scheduler),
                          ("--csv", args.csv), ("--converged-tol", args.converged_tol)):
        if value is not None:
            raise PresetError(option, str(value if not isinstance(value, list) else value[0]),
                              "belongs to a grid sweep: give --out FILE.nc or FILE.zarr "
                              "(a .csv/.json --out is the one-process table of --vary)")
    if not args.vary:
        raise PresetError("--vary", "", "give --vary key.path=v1,v2,… (or --grid with an "
                                        ".nc/.zarr --out)")
    preset = _load_with_overrides(args)
    keys, settings = _sweep_values(args.vary)
    _prepare(args.out)
    rows = []
    for setting in settings:
        label = " ".join(f"{k}={v}" for k, v in zip(keys, setting))
        variant = apply_sets(preset, [f"{k}={v}" for k, v in zip(keys, setting)])
        progress = None if args.quiet else _progress_printer(label)
        sim = run_preset(variant, progress=progress)
        info = summary(sim)
        escapes = info["escapes"] or {}
        temperature = sim.structure.temperature  # T of the equivalent Langevin dynamics
        measured = {(p["from"], p["to"]): p for p in escapes.get("transitions", [])}
        predicted = {(k["from"], k["to"]): k for k in sim.structure.kramers}
        # a row per predicted transition, seen or not (a setting whose runs saw no escape
        # still shows, with 0 transitions), then any seen transition without a prediction
        for source, target in list(predicted) + [t for t in measured if t not in predicted]:
            pair = measured.get((source, target), {})
            theory = predicted.get((source, target), {})
            kramers, barrier = theory.get("mfpt_steps"), theory.get("barrier")
            tau = pair.get("mfpt_steps")
            low, high = pair.get("mfpt_steps_ci95", (None, None))
            rows.append({**dict(zip(keys, setting)), "temperature": temperature,
                         "lr_equivalent": sim.structure.lr, "from": source,
                         "to": target, "barrier": barrier,
                         "barrier_over_T": barrier / temperature
                         if barrier is not None and temperature else None,
                         "transitions": pair.get("transitions", 0), "mfpt_steps": tau,
                         "mfpt_ci95_low": low, "mfpt_ci95_high": high,
                         "kramers_mfpt_steps": kramers,
                         "ratio_measured_over_kramers": tau / kramers
                         if tau is not None and kramers else None})
    out = Path(args.out)
    if out.suffix == ".json":
        write_json(out, {"vary": keys, "rows": rows})
    else:
        columns = list(rows[0]) if rows else keys
        lines = [",".join(columns)] + [",".join("" if r[c] is None else str(r[c])
                                                for c in columns) for r in rows]
        atomic_write_text(out, "\n".join(lines) + "\n")
    def steps(value) -> str:
        return "–" if value is None or not math.isfinite(value) else f"{value:.0f}"

    for r in rows:
        ratio = r["barrier_over_T"]
        print(f"{' '.join(f'{k}={r[k]}' for k in keys)}: {r['from']}→{r['to']} "
              f"ΔU/T={'–' if ratio is None else f'{ratio:.2f}'} "
              f"measured {steps(r['mfpt_steps'])} steps [{steps(r['mfpt_ci95_low'])}, "
              f"{steps(r['mfpt_ci95_high'])}] ({r['transitions']} transitions) vs "
              f"Eyring–Kramers {steps(r['kramers_mfpt_steps'])}")
    print(out)
    return 0


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def cmd_sweep_grid(args) -> int:
    """``sweep PRESET --grid … --seeds S --out FILE.nc|.zarr``: the Cartesian product of the
    grids (and the zipped --vary values) × S seeds on Dask distributed, each finished point
    persisted at once, resumed by the same command; exit 1 when a point failed (engine.sweep)."""
    from .sweep import build_sweep
    from .sweep.bundled import draw_figures, is_sweep_file, load_sweep_file
    spec = load_sweep_file(args.preset) if is_sweep_file(args.preset) else None
    grids = list(spec.grid if spec else ()) + list(args.grid or [])
    varies = list(spec.vary if spec else ()) + list(args.vary or [])
    _check_executor(args, grids or varies)
    if spec is None:
        preset, seeds, tol = _load_with_overrides(args), 1, args.converged_tol
    else:  # a sweep file: its preset, overrides, seeds and tolerance, the command's on top
        preset, seeds = apply_sets(spec.preset, _overrides(args)), spec.seeds
        tol = spec.converged_tol if args.converged_tol is None else args.converged_tol
    tol = {} if tol is None else {"converged_tol": tol}
    sweep = build_sweep(preset, grids, varies, seeds if args.seeds is None else args.seeds,
                        **tol)  # every point validated: nothing runs on a bad value
    return _run_grid(args, sweep, (lambda outcome: draw_figures(spec, outcome.dataset,
                                                                 args.out)) if spec else None)


def _check_executor(args, axes) -> None:
    """The options a grid sweep needs: an axis, and --workers or --scheduler (not both)."""
    if not axes:
        raise PresetError("--grid", "", "give at least one --grid key.path=values (or --vary)")
    if args.workers is not None and args.workers < 0:
        raise PresetError("--workers", str(args.workers), "must be >= 0 (0: in this process)")
    if args.scheduler is not None and args.workers is not None:
        raise PresetError("--scheduler", args.scheduler, "give --workers or --scheduler, "
                                                         "not both")


def _run_grid(args, sweep, figures=None) -> int:
    """Run ``sweep`` to ``args.out`` with the progress bar on stderr; ``figures(outcome)``
    returns the paths of figures drawn after a sweep whose points all succeeded."""
    from .sweep import run_sweep
    from .sweep.store import parts_folder
    out = Path(args.out)
    if args.scheduler:
        where = f"the Dask cluster at {args.scheduler}"
    elif args.workers == 0:
        where = "this process"
    else:
        from .sweep.executor import default_workers
        where = f"{args.workers or default_workers()} local Dask worker processes"
    shape = " × ".join(f"{d} {n}" for d, n in zip(sweep.dims, sweep.shape))
    print(f"sweep: {sweep.size} points ({shape}) on {where}", file=sys.stderr)
    shown = {"last": 0.0, "dashboard": False, "final": False}

    def on_start(state) -> None:
        if state.resumed:
            print(f"resuming: {state.resumed} of {state.total} points already done "
                  f"({parts_folder(out)})", file=sys.stderr)

    def progress(state) -> None:
        if state.dashboard and not shown["dashboard"]:
            shown["dashboard"] = True
            try:
                import bokeh  # noqa: F401  (the dashboard's plots need it)
                note = ""
            except ImportError:
                note = " (pip install bokeh for its plots)"
            print(f"dask dashboard: {state.dashboard}{note}", file=sys.stderr)
        if args.quiet or shown["final"]:
            return
        now = time.monotonic()
        final = state.done + state.failed == state.total
        if now - shown["last"] < 0.5 and not final:
            return
        shown["final"] = final
        shown["last"] = now
        width = 30
        filled = int(width * state.done / max(state.total, 1))
        sys.stderr.write(f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {state.done}/"
                         f"{state.total} done, {state.running} running, {state.failed} failed,"
                         f" ETA {_duration(state.eta_seconds())}   ")
        if final:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def on_error(index: int, message: str) -> None:
        sys.stderr.write(f"\npoint {index} ({sweep.label(index)}) failed: {message}\n")

    try:
        outcome = run_sweep(sweep, out, workers=args.workers, scheduler=args.scheduler,
                            csv=args.csv, progress=progress, on_error=on_error,
                            on_start=on_start)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished points are kept in {parts_folder(out)}; the same "
              "command runs only the missing ones", file=sys.stderr)
        return 130
    print(out)
    if args.csv:
        print(args.csv)
    if figures is not None and not outcome.errors:
        for figure in figures(outcome):
            print(figure)
    if outcome.errors:
        print(f"error: {len(outcome.errors)} of {sweep.size} points failed (NaN in {out}, "
              f"completed = 0); the same command runs them again", file=sys.stderr)
        return 1
    return 0


def cmd_plot(args) -> int:
    """``plot SWEEP.nc --x KEY [--y KEY] --var NAME --out FIG.png``: a phase diagram of a grid
    sweep (engine.sweep.plot), headless."""
    from .sweep.plot import check_names, grid_dims, phase_diagram
    from .sweep.store import open_dataset
    source = Path(args.dataset)
    if source.suffix not in (".nc", ".zarr"):
        raise PresetError("dataset", str(source), "must be a grid sweep's .nc or .zarr")
    if not source.exists():
        raise PresetError("dataset", str(source), "no such file")
    out = Path(args.out)
    if out.suffix not in (".png", ".pdf", ".svg"):
        raise PresetError("--out", str(out), "must end in .png, .pdf or .svg")
    ds = open_dataset(source)
    if args.figures is not None:
        from .sweep.bundled import draw_figures, load_sweep_file
        for figure in draw_figures(load_sweep_file(args.figures), ds, out):
            print(figure)
        return 0
    if args.var is None:
        raise PresetError("--var", "", "give the variable to plot (or --figures SWEEP_FILE)")
    x = args.x
    if x is None:
        keys = grid_dims(ds) if "completed" in ds.data_vars else []
        if len(keys) != 1:
            raise PresetError("--x", "", f"give the key along x (grid keys of {source}: "
                                         f"{', '.join(keys) or 'none'})")
        x = keys[0]
    marks = {}
    for spec in args.mark or []:
        label, _, value = spec.rpartition("=")
        try:
            marks[label or value] = float(value)
        except ValueError:
            raise PresetError("--mark", spec, "expected LABEL=NUMBER, e.g. 2/λ_max=0.02") \
                from None
    check_names(ds, x, args.y, args.var, str(source))
    phase_diagram(ds, x, args.y, args.var, out, transition=args.transition,
                  log_color=args.log, marks=marks, title=args.title)
    print(out)
    return 0


def cmd_ghosts(args) -> int:
    """The ghost comparison table (engine.ghost_compare) as JSON or CSV."""
    from .export import atomic_write_text, write_json
    from .ghost_compare import compare, table_rows
    preset = _load_with_overrides(args)
    counts = [int(v) for v in args.ghosts.split(",") if v.strip()]
    _prepare(args.out)
    state = {"last": 0.0}

    def progress(label, done, total):
        if not args.quiet and (time.monotonic() - state["last"] > 0.5 or done == total):
            state["last"] = time.monotonic()
            sys.stderr.write(f"\r{label}: {done}/{total}" + ("\n" if done == total else ""))

    result = compare(preset, counts, progress=progress)
    out = Path(args.out)
    if out.suffix == ".csv":
        rows = table_rows(result)
        columns = list(rows[0])
        atomic_write_text(out, "\n".join([",".join(columns)] + [
            ",".join("" if r[c] is None else str(r[c]) for c in columns) for r in rows]) + "\n")
    else:
        write_json(out, result)
    for arm in result["arms"]:
        last = arm["reached_by"][-1]
        med = arm["time_to_reach_steps"]
        print(f"e={arm['ghosts']}: reached by {last['step']}: {last['fraction']:.3f} "
              f"[{last['ci95'][0]:.3f}, {last['ci95'][1]:.3f}]; median steps {med['median']} "
              f"{med['ci95']}; final f_orig {arm['final_f_orig']['mean']:.4f} ± "
              f"{arm['final_f_orig']['ci95_half']:.4f}; ghost mass {arm['final_ghost_mass_mean']:.4f}")
    print(out)
    return 0


def cmd_cnn(args) -> int:
    from .cnn.api import run_cnn, with_overrides
    from .cnn.config import apply_cnn_sets, load_cnn
    from .cnn.report import text_report
    from .export import write_json
    preset = apply_cnn_sets(load_cnn(args.preset), list(args.set or []))
    preset = with_overrides(preset, args.runs, args.epochs)
    out = Path(args.out)
    if args.grid or out.suffix in (".nc", ".zarr"):
        return cmd_cnn_grid(args, preset)
    for option in ("seeds", "workers", "scheduler", "csv"):
        if getattr(args, option) is not None:
            raise PresetError(f"--{option}", str(getattr(args, option)),
                              "belongs to a grid sweep: give --grid and --out FILE.nc")
    if out.suffix != ".npz":
        raise PresetError("--out", str(out), "must end in .npz")
    _prepare(out)
    values = [None]
    if args.vary:
        if "=" not in args.vary:
            raise PresetError("--vary", args.vary, "expected key.path=v1,v2,…")
        key, raw = args.vary.split("=", 1)
        values = [v.strip() for v in raw.split(",") if v.strip()]
    table = []
    for value in values:
        variant = preset if value is None else apply_cnn_sets(preset, [f"{key}={value}"])
        target = out if value is None else out.with_name(f"{out.stem}_{key.split('.')[-1]}"
                                                         f"{value}{out.suffix}")
        label = "cnn" if value is None else f"cnn {key}={value}"
        progress = None if args.quiet else _progress_printer(label)
        summary, _ = run_cnn(variant, target, args.device, progress=progress)
        print(text_report(summary))
        print(target)
        if value is not None:
            row = {"value": value, "npz": str(target)}
            row.update({k: v for k, v in summary["paired_ghost_minus_baseline"].items()})
            row["arm"] = summary["arm"]
            table.append(row)
    if table:
        sweep = out.with_name(f"{out.stem}_sweep.json")
        write_json(sweep, {"key": key, "rows": table})
        print(sweep)
    return 0


def cmd_cnn_grid(args, preset) -> int:
    """``cnn PRESET --grid training.lr=… [--seeds S] --out FILE.nc``: the CNN experiment at
    every grid point × S training seeds on the sweep executor (engine.sweep.cnn_point); CUDA
    points go to workers with the Dask resource GPU when the cluster has any."""
    from .sweep import build_sweep
    if args.vary:
        raise PresetError("--vary", args.vary, "with --grid, give every key as a --grid")
    _check_executor(args, args.grid)
    sweep = build_sweep(preset, args.grid, seeds=1 if args.seeds is None else args.seeds,
                        device=args.device)
    return _run_grid(args, sweep)


def cmd_paths(args) -> int:
    """Minimum-energy path, committor, TPT rates (engine.paths.report) as JSON + NPZ."""
    from .paths.report import transition_report, write_report
    preset = _load_with_overrides(args)
    out = Path(args.out)
    if out.suffix != ".json":
        raise PresetError("--out", str(out), "must end in .json (the NPZ is written beside it)")
    _prepare(out)
    progress = None if args.quiet else _progress_printer("simulate")
    report, arrays = transition_report(preset, args.source, args.target, grid=args.grid,
                                       simulate=args.simulate, steps=args.steps,
                                       spectral=args.spectral, progress=progress)
    npz = write_report(out, report, arrays)
    rates, top = report["rates"], report["highest"]

    def time_(entry) -> str:
        value = entry.get("mfpt_time") if entry else None
        return "–" if value is None else f"{value:.4g}"

    print(f"path {args.source}→{args.target}: highest f = {top['f']:.6g} at ({top['x']:.6f}, "
          f"{top['y']:.6f}); mean time {args.source}→{args.target}: TPT {time_(rates['tpt'])} "
          f"(checked once a step: {time_(rates['tpt']['at_step'])}), Eyring–Kramers "
          f"{time_(rates['kramers'])}, measured {time_(rates['measured'])} (time units η·steps)")
    print(out)
    print(npz)
    return 0


def _run_options(command: argparse.ArgumentParser, out_help: str) -> None:
    """--steps, --seed, --set, --out and --quiet, shared by run, sweep and ghosts."""
    command.add_argument("--steps", type=int, metavar="N",
                         help="steps to simulate (sets run.steps; default: the preset's)")
    command.add_argument("--seed", type=int, metavar="S",
                         help="seed of the particles' random streams (sets ensemble.seed)")
    command.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                         help="override a preset value, e.g. dynamics.temperature=0.25; the "
                              "value is read as TOML (bare words are strings) and the result "
                              "validated like the file; repeatable")
    command.add_argument("--out", required=True, metavar="FILE",
                         help=out_help + "; its folder is created")
    command.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


_EXAMPLES = {
    "run": """\
Writes positions (F,N,2), loss, lyapunov, basin, events and the ensemble series to FILE
(.npz, or a long-format .csv) and a JSON summary FILE.json beside it (escape statistics, measure
vs Gibbs, autocorrelation times).  Exit status 2 on a bad preset or option, 3 when every particle
diverged.

examples:
  python -m engine run presets/double_well_kramers.toml --steps 20000 \\
      --set dynamics.temperature=0.25 --out out/dw.npz
  python -m engine run presets/zhang_sin_lr004.toml --out out/zhang.csv
  python -m engine run presets/double_well_kramers.toml --out out/dw_cosine.npz \\
      --set 'dynamics.schedule.lr={shape="cosine", end=0.001, steps=10000}'
  python -m engine run presets/annealing_muller_brown.toml --out out/held.npz \\
      --set dynamics.schedule.temperature.shape=constant
  python -m engine run presets/double_well_kramers.toml --steps 10000 \\
      --checkpoint out/dw.ckpt --checkpoint-every 5000 --out out/dw.npz
  python -m engine run --resume out/dw.ckpt --steps 10000 --out out/dw_more.npz
""",
    "info": """\
Prints JSON: the landscape's minima and index-1 saddles (position, value, Hessian eigenvalues,
the largest stable GD step 2/λ_max), the Laplace weights at the preset's temperature and the
Eyring–Kramers escape times between basins.  Nothing is simulated.

examples:
  python -m engine info presets/double_well_kramers.toml
  python -m engine info presets/double_well_kramers.toml --set dynamics.temperature=0.5
""",
    "sweep": """\
With a .csv or .json --out: runs the preset once per value of the varied key(s), in this process,
and writes one row per (setting, transition): measured mean first-passage time with its 95 %
interval beside the Eyring–Kramers prediction at the equivalent Langevin temperature (T_eff for
SGD).

With a .nc or .zarr --out: a grid sweep on Dask distributed.  The Cartesian product of every
--grid (and of the zipped --vary values) × --seeds replicates; each point's ensemble.seed comes
from SeedSequence([preset seed, point index]), so results do not depend on the workers.  Every
point is validated before anything runs.  Each finished point is saved at once in FILE.parts/;
the same command after a crash or Ctrl-C runs only the missing points.  The result is an xarray
Dataset (one dimension per key, plus seed): MFPT per transition with 95 % intervals, Kramers,
occupations vs Laplace weights, TV/KL to Gibbs, losses, γ̂, T_eff, converged fraction, wall time.
Exit status 1 when a point failed (reported, the others go on), 2 on a bad preset or value.

examples:
  python -m engine sweep presets/arrhenius_sweep.toml \\
      --vary dynamics.temperature=0.2,0.25,0.33,0.5 --out out/arrhenius.csv
  python -m engine sweep presets/batch_size_temperature.toml \\
      --vary dynamics.lr=0.01,0.02,0.01 --vary dynamics.batch_size=4,8,8 --out out/scaling.csv
  python -m engine sweep presets/zhang_sin_lr004.toml --grid dynamics.lr=0.005:0.05:10 \\
      --grid dynamics.temperature=0,0.1,1 --seeds 4 --workers 2 --out out/zhang.nc
  python -m engine sweep presets/arrhenius_sweep.toml --grid dynamics.temperature=log:0.2:1:5 \\
      --seeds 8 --scheduler tcp://10.0.0.5:8786 --out out/arrhenius.zarr --csv out/arrhenius.csv
""",
    "ghosts": """\
Ghost-extended SGD on a classifier preset (dynamics.kind = "ghost"): the same initial cloud run
with each ghost count; per count the fraction of particles that reached the teacher basin over
time (Wilson 95 % intervals), the median hitting time, the final loss and ghost mass.

example:
  python -m engine ghosts presets/ghost_corridor.toml --ghosts 0,1,2,4 --out out/ghosts.json
""",
    "paths": """\
Writes FILE (.json): the minimum-energy path between minima I and J (string method with a
climbing image; its highest point is the saddle), its energy profile, and the mean transition
time I → J from transition path theory, Eyring–Kramers and (with --simulate) a run's escape
events; and FILE.npz beside it: x (nx,), y (ny,), committor, reactive_density (ny, nx) and
current (ny, nx, 2) on a GRID × GRID grid.  A and B are the core sets of run's escape tracking.

examples:
  python -m engine paths presets/muller_brown_paths.toml --from 0 --to 1 --out out/paths.json
  python -m engine paths presets/double_well_kramers.toml --from 0 --to 1 --simulate \\
      --steps 20000 --out out/dw_paths.json
""",
    "cnn": """\
Trains R runs × 2 arms (no ghosts / the preset's ghosts) of the small CNN together and writes
FILE (.npz: every metric per epoch and run), its .json beside it (the report: first test-loss peaks,
paired ghost − baseline differences with 95 % t intervals; out/smoke.npz → out/smoke.json) and
PNG figures (out/smoke_bands.png, …).

examples:
  python -m engine cnn presets/cnn_smoke.toml --out out/smoke.npz
  python -m engine cnn presets/rmnist30_ghost.toml --runs 10 --epochs 60 --out out/r10.npz
  python -m engine cnn presets/rmnist30_ghost.toml --device cuda \\
      --vary training.lr=0.05,0.1,0.2,0.5 --set diagnostics.every=20 --out out/sweep.npz
""",
}


_EXAMPLES["plot"] = """\
A heatmap of a variable over two grid keys, averaged over the seeds (other grid keys at their
first value); with --x alone, the mean over the seeds against x with its 95 % interval.
A missing key or variable exits with status 2 and the list of what the dataset has.

examples:
  python -m engine plot out/sweep.nc --x dynamics.lr --y dynamics.temperature \\
      --var converged_fraction --mark 2/λ_max=0.02 --out fig.png
  python -m engine plot out/arrhenius.nc --x dynamics.temperature --var mfpt_steps --log \\
      --out mfpt.png
"""


def _command(sub, name: str, summary: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                          epilog=_EXAMPLES[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_run_command(sub) -> None:
    run = _command(sub, "run", "simulate a preset and write a trajectory file")
    run.add_argument("preset", nargs="?", help="preset file (not with --resume)")
    _run_options(run, "output trajectory, .npz or .csv")
    run.add_argument("--checkpoint", metavar="FILE",
                     help="write the run's complete state here (atomically) at the end and "
                          "every --checkpoint-every steps")
    run.add_argument("--checkpoint-every", type=int, metavar="K",
                     help="with --checkpoint: also write it every K steps during the run")
    run.add_argument("--resume", metavar="FILE",
                     help="continue the run of a checkpoint for --steps more steps (no preset, "
                          "--set or --seed: the checkpoint holds them)")
    run.set_defaults(func=cmd_run)


def _add_info_command(sub) -> None:
    info = _command(sub, "info", "minima, saddles and Kramers times as JSON")
    info.add_argument("preset", help="preset file")
    info.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                      help="override a preset value (TOML value; bare words are strings); "
                           "repeatable")
    info.set_defaults(func=cmd_info)


def _add_sweep_command(sub) -> None:
    sweep = _command(sub, "sweep", "run a preset over values of one or more keys (e.g. an "
                                   "Arrhenius sweep of the temperature)")
    sweep.add_argument("preset", help="preset file, or a sweep file (presets/sweeps/*.toml: a "
                                       "preset with its grid, seeds and figures)")
    sweep.add_argument("--vary", action="append", metavar="KEY.PATH=V1,V2,…",
                       help="the values of a key, one run each; repeat to vary keys together, "
                            "value by value (e.g. dynamics.lr=0.01,0.02 --vary "
                            "dynamics.batch_size=4,8)")
    sweep.add_argument("--grid", action="append", metavar="KEY.PATH=VALUES",
                       help="(.nc/.zarr --out) one dimension of the sweep: v1,v2,… (TOML "
                            "values), start:stop:count (inclusive, evenly spaced) or "
                            "log:start:stop:count; repeat for the Cartesian product")
    sweep.add_argument("--seeds", type=int, metavar="S",
                       help="(.nc/.zarr --out) replicates per grid point, each with its own "
                            "seed (default 1)")
    sweep.add_argument("--workers", type=int, metavar="N",
                       help="(.nc/.zarr --out) a local Dask cluster of N single-threaded "
                            "worker processes (default: one per core); 0 runs the points in "
                            "this process (debugging)")
    sweep.add_argument("--scheduler", metavar="ADDRESS",
                       help="(.nc/.zarr --out) run on a running Dask cluster instead, e.g. "
                            "tcp://10.0.0.5:8786 (its workers need this project installed)")
    sweep.add_argument("--csv", metavar="FILE",
                       help="(.nc/.zarr --out) also write a tidy table, one row per point")
    sweep.add_argument("--converged-tol", type=float, metavar="G",
                       help="(.nc/.zarr --out) a particle has converged when its final "
                            "gradient norm is <= G (default 1e-6)")
    _run_options(sweep, "output: .csv or .json (table), .nc or .zarr (grid sweep dataset)")
    sweep.set_defaults(func=cmd_sweep)


def _add_ghosts_command(sub) -> None:
    ghosts = _command(sub, "ghosts", "compare runs with e = 0, 1, 2, 4 ghosts from the same "
                                     "initial cloud")
    ghosts.add_argument("preset", help="a ghost preset on the sine classifier")
    ghosts.add_argument("--ghosts", default="0,1,2,4", metavar="E1,E2,…",
                        help="ghost counts to compare (default 0,1,2,4)")
    _run_options(ghosts, "output table, .json or .csv")
    ghosts.set_defaults(func=cmd_ghosts)


def _add_paths_command(sub) -> None:
    paths = _command(sub, "paths", "minimum-energy path, committor and transition rates "
                                   "between two minima (JSON + NPZ)")
    paths.add_argument("preset", help="preset file")
    paths.add_argument("--from", dest="source", type=int, required=True, metavar="I",
                       help="index of the starting minimum, as `info` lists them")
    paths.add_argument("--to", dest="target", type=int, required=True, metavar="J",
                       help="index of the target minimum")
    paths.add_argument("--grid", type=int, default=256, metavar="N",
                       help="committor grid: N × N cells over the bounds (default 256)")
    paths.add_argument("--simulate", action="store_true",
                       help="also run the preset (--steps) and report the measured I → J time")
    paths.add_argument("--spectral", action="store_true",
                       help="also the slowest relaxation time of the discretised generator "
                            "(its spectral gap; about 2 s more at 256²)")
    _run_options(paths, "output .json (FILE.npz is written beside it)")
    paths.set_defaults(func=cmd_paths)


def _add_plot_command(sub) -> None:
    plot = _command(sub, "plot", "draw a phase diagram (PNG) of a grid sweep's dataset")
    plot.add_argument("dataset", help="a grid sweep's .nc or .zarr (engine sweep --out)")
    plot.add_argument("--x", metavar="KEY", help="grid key along x (default: the only one)")
    plot.add_argument("--y", metavar="KEY", help="grid key along y: a heatmap (without: a "
                                                 "curve with error bars over the seeds)")
    plot.add_argument("--var", metavar="NAME",
                      help="variable, e.g. converged_fraction, time_avg_loss, mfpt_steps")
    plot.add_argument("--figures", metavar="SWEEP_FILE",
                      help="draw the [[figure]]s of a sweep file (presets/sweeps/) instead, "
                           "as <out stem>_<figure>.png")
    plot.add_argument("--transition", type=int, default=0, metavar="I",
                      help="for per-transition variables (mfpt_steps, …): which pair "
                           "(default 0)")
    plot.add_argument("--log", action="store_true", help="log colour (or y) scale")
    plot.add_argument("--mark", action="append", metavar="LABEL=X",
                      help="a vertical line at x = X, e.g. 2/λ_max=0.02; repeatable")
    plot.add_argument("--title", help="figure title (default: the sweep's)")
    plot.add_argument("--out", required=True, metavar="FILE",
                      help="output .png (or .pdf, .svg); its folder is created")
    plot.set_defaults(func=cmd_plot)


def _add_cnn_command(sub) -> None:
    cnn = _command(sub, "cnn", "train the ghost-CNN experiment (R runs × 2 arms) and write the "
                               "NPZ, a JSON summary and PNG figures")
    cnn.add_argument("preset", help="a CNN-lab preset (tables data, model, training)")
    cnn.add_argument("--runs", type=int, metavar="R",
                     help="number of runs (data subsets × initialisations; default: the preset's)")
    cnn.add_argument("--epochs", type=int, metavar="E",
                     help="epochs per run (default: the preset's)")
    cnn.add_argument("--device", default="auto",
                     help="cpu, cuda or auto (default: CUDA when present, else the CPU)")
    cnn.add_argument("--set", action="append", metavar="KEY.PATH=VALUE",
                     help="override a preset value, e.g. training.lr=0.1 (TOML value); "
                          "repeatable")
    cnn.add_argument("--vary", metavar="KEY.PATH=V1,V2,…",
                     help="repeat the experiment for each value (e.g. training.lr=0.05,0.1,0.2),"
                          " writing <out>_<key><value>.npz each and a <out>_sweep.json table")
    cnn.add_argument("--grid", action="append", metavar="KEY.PATH=VALUES",
                     help="a grid sweep on the sweep executor (with --out FILE.nc or .zarr): "
                          "one dimension, v1,v2,… or start:stop:count or log:…; repeatable")
    cnn.add_argument("--seeds", type=int, metavar="S",
                     help="(--grid) training seeds per grid point (default 1)")
    cnn.add_argument("--workers", type=int, metavar="N",
                     help="(--grid) local Dask worker processes (default: one per core; 0: in "
                          "this process)")
    cnn.add_argument("--scheduler", metavar="ADDRESS",
                     help="(--grid) a running Dask cluster; workers started with --resources "
                          "GPU=1 take the CUDA points")
    cnn.add_argument("--csv", metavar="FILE", help="(--grid) also a tidy table, a row a point")
    cnn.add_argument("--out", required=True, metavar="FILE",
                     help="output .npz (its .json and figures beside it), or with --grid a "
                          ".nc/.zarr dataset; its folder is created")
    cnn.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    cnn.set_defaults(func=cmd_cnn)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="ErgoScope engine, headless: the same presets and numbers as the window.",
        epilog="`python -m engine COMMAND --help` describes each command with examples.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_command(sub)
    _add_info_command(sub)
    _add_sweep_command(sub)
    _add_ghosts_command(sub)
    _add_paths_command(sub)
    _add_plot_command(sub)
    _add_cnn_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PresetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
