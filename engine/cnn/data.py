"""Image data for the CNN lab: scikit-learn's bundled digits or MNIST IDX files, fixed test sets
and seeded "R/n" training subsets (n images per class drawn without replacement per run).

Digits (1797 real 8×8 scans, ≈180 per class, bundled with scikit-learn, offline) are the default.
A fixed test set of ``test_per_class`` images per class is held out once (seed 0 of its own
stream, independent of the run seeds); every run draws its training subset from the rest.
MNIST: the training subsets come from ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``,
the test set from the first ``test_per_class`` images per class of the ``t10k`` files (if present;
else held out of the training files like digits).  Pixels are scaled to [0, 1].
"""
from __future__ import annotations

import gzip
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
    test: Dataset   # fixed for every run


def load_digits() -> Dataset:
    from sklearn.datasets import load_digits as sk_digits
    bunch = sk_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    return Dataset(images, bunch.target.astype(np.int64), 10, "digits 8x8")


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
    """The training pool and the fixed test set for a data source (``digits`` or ``mnist``)."""
    if source == "digits":
        full = load_digits()
        test_source = None
    elif source == "mnist":
        full = load_mnist(path, "train")
        try:
            test_source = load_mnist(path, "t10k")
        except DataError:
            test_source = None
    else:
        raise DataError(f"unknown data source {source!r}")
    rng = np.random.default_rng(np.random.SeedSequence([20_221_126, 0]))
    if test_source is not None:
        test_index = _per_class_indices(test_source.labels, test_source.classes, test_per_class,
                                        rng, f"{path} (t10k)")
        return Split(full, _subset(test_source, test_index))
    test_index = _per_class_indices(full.labels, full.classes, test_per_class, rng, full.name)
    pool = np.setdiff1d(np.arange(full.labels.size), test_index)
    return Split(_subset(full, pool), _subset(full, test_index))


def run_subsets(pool: Dataset, per_class: int, seed: int, runs: int) -> np.ndarray:
    """(runs, per_class · classes) indices into ``pool``: run r's "R/n" subset, drawn without
    replacement from its own stream ``(seed, r)``, sorted by class then index."""
    out = np.empty((runs, per_class * pool.classes), dtype=np.int64)
    for r in range(runs):
        rng = np.random.default_rng(np.random.SeedSequence([seed, r, 1]))
        out[r] = _per_class_indices(pool.labels, pool.classes, per_class, rng, pool.name)
    return out
