"""Pytrees: an ndarray, or lists, tuples and dicts nesting ndarrays.

Each leaf has a path written the way a user would index it, ``x['W'][1]``, so that a report can say which element
is wrong with ``x['W'][1][3, 0]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.errors import InvalidArgument, InvalidType

__all__ = ["TreeDef", "flatten", "float_leaves", "match_structure"]


@dataclass(frozen=True)
class TreeDef:
    """The shape of a pytree without its leaves: a container kind, its keys and its children."""

    kind: type | None  # None marks a leaf
    keys: tuple[Any, ...] = ()
    children: tuple[TreeDef, ...] = ()
    factory: Any = None  # a defaultdict's default_factory

    def unflatten(self, leaves: Sequence[Any]) -> Any:
        """Rebuild a tree of this shape from ``leaves`` in flatten order."""
        it = iter(leaves)
        tree = self._build(it)
        if next(it, None) is not None:
            raise InvalidArgument(f"unflatten got more leaves than the tree has ({self.num_leaves})")
        return tree

    def _build(self, it: Any) -> Any:
        if self.kind is None:
            return next(it)
        values = [child._build(it) for child in self.children]
        if issubclass(self.kind, defaultdict):
            return self.kind(self.factory, zip(self.keys, values))
        if issubclass(self.kind, dict):
            return self.kind(zip(self.keys, values))
        kind: Any = self.kind
        if issubclass(kind, tuple) and hasattr(kind, "_fields"):  # namedtuple
            return kind(*values)
        return kind(values)

    @property
    def num_leaves(self) -> int:
        return 1 if self.kind is None else sum(c.num_leaves for c in self.children)


def _key_str(key: Any) -> str:
    return f"[{key!r}]"


def _sorted_keys(node: dict[Any, Any]) -> tuple[Any, ...]:
    """A dict's keys in a canonical order, so that two dicts with the same keys match whatever their insertion order."""
    try:
        return tuple(sorted(node))
    except TypeError:  # keys of mixed, unorderable types
        return tuple(sorted(node, key=lambda k: (type(k).__name__, repr(k))))


def flatten(tree: Any, name: str = "x") -> tuple[list[str], list[Any], TreeDef]:
    """Split ``tree`` into leaf paths, leaves and a :class:`TreeDef`; leaves are returned as they are."""
    paths: list[str] = []
    leaves: list[Any] = []
    open_containers: set[int] = set()

    def walk(node: Any, path: str) -> TreeDef:
        if not isinstance(node, (dict, list, tuple)):
            paths.append(path)
            leaves.append(node)
            return TreeDef(None)
        if id(node) in open_containers:
            raise InvalidArgument(
                f"{path} contains itself (a self-referencing {type(node).__name__}); {name} must be "
                "a tree of arrays: build it from new lists, tuples and dicts"
            )
        if len(open_containers) > 200:
            raise InvalidArgument(f"{name} is nested more than 200 containers deep at {path}; pass a flatter tree")
        open_containers.add(id(node))
        if isinstance(node, dict):
            keys = _sorted_keys(node)
            factory = node.default_factory if isinstance(node, defaultdict) else None
            tree = TreeDef(type(node), keys, tuple(walk(node[k], path + _key_str(k)) for k in keys), factory)
        else:
            tree = TreeDef(
                type(node), tuple(range(len(node))), tuple(walk(v, f"{path}[{i}]") for i, v in enumerate(node))
            )
        open_containers.discard(id(node))
        return tree

    treedef = walk(tree, name)
    _round_trips(treedef, leaves, tree, name)
    return paths, leaves, treedef


def _round_trips(treedef: TreeDef, leaves: list[Any], tree: Any, name: str) -> None:
    """Refuse, by name, a container that cannot be rebuilt from its entries as the same type with the same keys (a
    dict or list subclass whose constructor takes other arguments): func would be handed something else."""
    try:
        rebuilt = treedef.unflatten(leaves)
        same = _same_shape(rebuilt, tree)
    except Exception as exc:  # a user's container type raising anything: refuse it, saying what it raised
        raise InvalidType(
            f"{name} holds a container that cannot be rebuilt from its entries ({type(exc).__name__}: {exc}); pass "
            "plain dicts, lists, tuples, namedtuples, OrderedDicts or defaultdicts of arrays"
        ) from None
    if not same:
        raise InvalidType(
            f"{name} holds a {type(tree).__name__} that does not rebuild as itself from its entries; pass plain "
            "dicts, lists, tuples, namedtuples, OrderedDicts or defaultdicts of arrays"
        )


def _same_shape(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_shape(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_shape(x, y) for x, y in zip(a, b))
    return True


def float_leaves(tree: Any, name: str = "x") -> tuple[list[str], list[np.ndarray], TreeDef]:
    """Flatten ``tree`` and insist that every leaf is a floating-point ndarray; returns private copies."""
    paths, leaves, treedef = flatten(tree, name)
    if not leaves:
        raise InvalidArgument(
            f"{name} has no arrays in it ({type(tree).__name__} with no leaves); "
            "pass an ndarray or a list/tuple/dict of ndarrays"
        )
    out = []
    for path, leaf in zip(paths, leaves):
        if isinstance(leaf, np.floating):
            leaf = np.asarray(leaf)  # a numpy float scalar is a 0-d leaf
        if not isinstance(leaf, np.ndarray):
            raise InvalidType(
                f"{path} is a {type(leaf).__name__}; every leaf of {name} must be a numpy array of a "
                f"floating dtype: wrap it with np.asarray(..., dtype=np.float64)"
            )
        if np.issubdtype(leaf.dtype, np.complexfloating):
            raise InvalidType(
                f"{path} has complex dtype {leaf.dtype}; gradients are checked for real parameters: "
                "split it into real and imaginary parts, each a float array"
            )
        if not np.issubdtype(leaf.dtype, np.floating):
            raise InvalidType(
                f"{path} has dtype {leaf.dtype}; finite differences need a real floating dtype: "
                f"convert it with .astype(np.float64) (or np.float32)"
            )
        _refuse_masked(leaf, path)
        if isinstance(leaf, np.matrix):
            raise InvalidType(
                f"{path} is an np.matrix; func would get a plain array, on which * multiplies element-wise where a "
                "matrix multiplies matrices, and so differentiate another function: pass np.asarray(...) and use @"
            )
        # A C-ordered, native-endian private copy, whatever the caller's layout (transposed, Fortran-ordered,
        # strided, broadcast, read-only, big-endian): func is handed fresh copies of it on every call.
        out.append(np.array(leaf, dtype=leaf.dtype.newbyteorder("="), order="C", copy=True, subok=False))
    if not any(leaf.size for leaf in out):
        raise InvalidArgument(
            f"every array in {name} is empty ({', '.join(f'{p}: {a.shape}' for p, a in zip(paths, out))}"
            "); there is no element to check: pass the parameters themselves"
        )
    return paths, out, treedef


def _refuse_masked(leaf: np.ndarray, path: str) -> None:
    if isinstance(leaf, np.ma.MaskedArray) and np.ma.getmaskarray(leaf).any():
        raise InvalidType(
            f"{path} is a masked array with {int(np.ma.getmaskarray(leaf).sum())} masked entries; "
            "masked entries have no value to check: pass leaf.filled(value) or drop them"
        )


def match_structure(
    reference: TreeDef, ref_paths: list[str], ref_leaves: list[np.ndarray], other: Any, what: str
) -> list[np.ndarray]:
    """Check that ``other`` has the structure, shapes and dtypes of the reference tree; return its leaves.

    ``what`` names ``other`` in messages, e.g. ``"grad(x)"``.
    """
    paths, leaves, treedef = flatten(other, what)
    if treedef != reference:
        raise InvalidArgument(
            f"{what} returned a {_describe(treedef)} but x is a {_describe(reference)}; the gradient must have "
            f"the structure of x (same containers, keys and number of arrays), leaf paths {ref_paths}"
        )
    out = []
    for path, ref_path, leaf, ref in zip(paths, ref_paths, leaves, ref_leaves):
        if isinstance(leaf, np.generic) and ref.ndim == 0:
            leaf = np.asarray(leaf)  # numpy ufuncs return scalars for 0-d input
        if not isinstance(leaf, np.ndarray):
            raise InvalidType(
                f"{path} is a {type(leaf).__name__}; it must be an ndarray of shape {ref.shape} and "
                f"dtype {ref.dtype} like {ref_path}"
            )
        _refuse_masked(leaf, path)
        leaf = np.asarray(leaf)  # a subclass (np.matrix, a masked array without masked entries) as a plain array
        if leaf.dtype.byteorder not in ("=", "|"):
            leaf = leaf.astype(leaf.dtype.newbyteorder("="))  # a big-endian gradient is the same gradient
        if leaf.shape != ref.shape:
            raise InvalidArgument(
                f"{path} has shape {leaf.shape} but {ref_path} has shape {ref.shape}; return one "
                "partial derivative per element of x, in x's shape (check for a missing "
                "transpose or a reduction over the wrong axis)"
            )
        if leaf.dtype != ref.dtype:
            raise InvalidType(
                f"{path} has dtype {leaf.dtype} but {ref_path} has dtype {ref.dtype}; a gradient has "
                f"the dtype of its parameter: return .astype(np.{ref.dtype}) or find the promotion"
            )
        out.append(leaf)
    return out


def _describe(t: TreeDef) -> str:
    if t.kind is None:
        return "single array"
    keys = list(t.keys) if issubclass(t.kind, dict) else len(t.keys)
    return f"{t.kind.__name__} of {keys} ({t.num_leaves} arrays)"
