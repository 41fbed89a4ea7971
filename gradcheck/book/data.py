"""Handwritten digits for the chapter-5 experiment: MNIST from its standard IDX files, scikit-learn's ``load_digits``,
or labelled synthetic data. Nothing is downloaded.

Every loader returns ``Digits(X, labels, source)`` with X of shape ``(n, pixels)`` scaled to [0, 1] and integer
labels 0–9 of shape ``(n,)``.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass

import numpy as np

from gradcheck.errors import InvalidArgument

__all__ = ["MAX_IDX_BYTES", "MNIST_FILES", "Digits", "load", "load_digits", "load_mnist", "synthetic"]

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


@dataclass(frozen=True)
class Digits:
    X: np.ndarray  # (n, pixels), in [0, 1]
    labels: np.ndarray  # (n,), integers 0–9
    source: str

    def one_hot(self) -> np.ndarray:
        result: np.ndarray = np.eye(10)[self.labels]
        return result


def load(source: str | None, *, rng: np.random.Generator) -> Digits:
    """``source`` is a folder or file of MNIST IDX files, ``"digits"`` for scikit-learn's digits, ``"synthetic"``,
    or None: scikit-learn's digits when scikit-learn is installed, synthetic data otherwise."""
    if source is None:
        try:
            return load_digits()
        except InvalidArgument:
            return synthetic(rng=rng)
    if source == "digits":
        return load_digits()
    if source == "synthetic":
        return synthetic(rng=rng)
    return load_mnist(source)


def load_digits() -> Digits:
    """scikit-learn's 1,797 8×8 digits (bundled with scikit-learn), pixels scaled from 0–16 to [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise InvalidArgument(
            "the digits data set needs scikit-learn: pip install scikit-learn (in gradcheck's clone: pip install "
            "'.[digits]'), or pass "
            "--data PATH to MNIST files, or --data synthetic"
        ) from None
    bunch = sklearn_digits()
    return Digits(bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64), "scikit-learn digits (8×8)")


def load_mnist(path: str) -> Digits:
    """MNIST's training set from ``path``: a folder holding train-images-idx3-ubyte and train-labels-idx1-ubyte
    (optionally .gz), or the images file itself with the labels file beside it."""
    images, labels = _mnist_paths(path)
    X = _read_idx(images, IMAGES_MAGIC)
    y = _read_idx(labels, LABELS_MAGIC)
    if len(X) != len(y):
        raise InvalidArgument(f"{images} holds {len(X)} images but {labels} holds {len(y)} labels; pass matching files")
    if not len(X) or X.ndim != 3 or not X[0].size:
        raise InvalidArgument(
            f"{images} holds no images (shape {X.shape}); pass MNIST's training files, which hold 60,000 of 28×28"
        )
    if y.size and y.max() > 9:
        raise InvalidArgument(f"{labels} has label {int(y.max())}; MNIST labels are 0–9")
    return Digits(X.reshape(len(X), -1).astype(np.float64) / 255.0, y.astype(np.int64), f"MNIST ({images})")


def synthetic(*, n: int = 1797, side: int = 8, rng: np.random.Generator) -> Digits:
    """Ten random prototype images plus noise, shaped like the digits data: a stand-in, labelled as such."""
    prototypes = rng.uniform(0, 1, (10, side * side))
    labels = rng.integers(0, 10, n)
    X = np.clip(prototypes[labels] + 0.2 * rng.standard_normal((n, side * side)), 0, 1)
    return Digits(X, labels, "synthetic (no real digits: install scikit-learn or pass --data)")


def _read_bytes(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read(MAX_IDX_BYTES + 64)
        with open(path, "rb") as f:
            return f.read(MAX_IDX_BYTES + 64)
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise InvalidArgument(f"cannot read {path}: {exc}; pass MNIST's IDX files (optionally .gz)") from None


def _mnist_paths(path: str) -> tuple[str, str]:
    if os.path.isdir(path):
        found = []
        for stem in MNIST_FILES:
            for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
                if os.path.exists(os.path.join(path, name)):
                    found.append(os.path.join(path, name))
                    break
            else:
                raise InvalidArgument(
                    f"{path} has no {stem}[.gz]; download MNIST's training files there or pass --data digits"
                )
        return found[0], found[1]
    if os.path.isfile(path):
        labels = path.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1")
        if labels == path or not os.path.exists(labels):
            raise InvalidArgument(f"no labels file beside {path}; expected {labels}")
        return path, labels
    raise InvalidArgument(
        f"--data {path!r} is neither a folder nor a file; pass the folder holding MNIST's "
        "train-images-idx3-ubyte and train-labels-idx1-ubyte"
    )


MAX_IDX_BYTES = 1 << 31  # MNIST's training images are 47 MB; anything past 2 GiB is not a digits file


def _read_idx(path: str, magic: int) -> np.ndarray:
    raw = _read_bytes(path)
    if len(raw) < 8:
        raise InvalidArgument(f"{path} is {len(raw)} bytes long, too short for an IDX header")
    (found,) = struct.unpack(">i", raw[:4])
    if found != magic:
        raise InvalidArgument(
            f"{path} starts with magic number {found}, not {magic}: is it the "
            f"{'images' if magic == IMAGES_MAGIC else 'labels'} file?"
        )
    ndim = found & 0xFF
    if len(raw) < 4 + 4 * ndim:
        raise InvalidArgument(
            f"{path} is {len(raw)} bytes long, too short for its {ndim}-dimensional IDX header; the file is truncated"
        )
    dims = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    size = 1
    for d in dims:
        size *= d
    if any(d < 0 for d in dims) or size > MAX_IDX_BYTES:
        raise InvalidArgument(f"{path} declares shape {dims}, which no MNIST file has; the header is corrupt")
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != size:
        raise InvalidArgument(
            f"{path} declares shape {dims} ({size} bytes) but holds {body.size}; the file is truncated or not IDX"
        )
    return body.reshape(dims)
