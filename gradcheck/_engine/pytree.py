"""Pytrees, through optree: an ndarray, or dicts, lists, tuples, namedtuples, OrderedDicts, defaultdicts and deques
nesting ndarrays, and any class registered with optree in the ``gradcheck`` namespace.

Each leaf has a path written the way a user would index it, ``x['W'][1]`` (``x.W`` for a namedtuple field), so
that a report can say which element is wrong with ``x['W'][1][3, 0]``. A dict's entries are taken in sorted key
order, so that two dicts with the same keys match whatever their insertion order; the dict is rebuilt in its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optree

from gradcheck.errors import InvalidArgument, InvalidType

__all__ = ["NAMESPACE", "TreeDef", "flatten", "float_leaves", "match_structure"]

NAMESPACE = "gradcheck"
"""The optree namespace in which a user registers a container class of their own:
``optree.register_pytree_node(Params, flatten, unflatten, namespace="gradcheck")``."""

_CONTAINERS = "dicts, lists, tuples, namedtuples, OrderedDicts, defaultdicts or deques of arrays"


@dataclass(frozen=True)
class TreeDef:
    """The shape of a pytree without its leaves (optree's tree spec)."""

    spec: Any

    def unflatten(self, leaves: Sequence[Any]) -> Any:
        """Rebuild a tree of this shape from ``leaves`` in flatten order."""
        if len(leaves) != self.num_leaves:
            raise InvalidArgument(f"unflatten got {len(leaves)} leaves for a tree of {self.num_leaves}")
        return optree.tree_unflatten(self.spec, list(leaves))

    @property
    def is_leaf(self) -> bool:
        """Whether the tree is a single array."""
        return bool(self.spec.is_leaf())

    @property
    def num_leaves(self) -> int:
        return int(self.spec.num_leaves)

    def __repr__(self) -> str:
        return f"TreeDef({self.spec})"


def flatten(tree: Any, name: str = "x") -> tuple[list[str], list[Any], TreeDef]:
    """Split ``tree`` into leaf paths, leaves and a :class:`TreeDef`; leaves are returned as they are. None is a
    leaf (and so refused where an array is needed, by path)."""
    try:
        accessors, leaves, spec = optree.tree_flatten_with_accessor(tree, none_is_leaf=True, namespace=NAMESPACE)
    except RecursionError:
        where = _cycle(tree, name, set())
        what = f"{where} contains itself (a self-referencing container)" if where else f"{name} is nested too deep"
        raise InvalidArgument(f"{what}; pass a tree of arrays built from new {_CONTAINERS}") from None
    paths = [_path(accessor, name) for accessor in accessors]
    treedef = TreeDef(spec)
    _round_trips(treedef, leaves, name)
    return paths, list(leaves), treedef


def _cycle(node: Any, path: str, open_containers: set[int]) -> str | None:
    """The path of the first dict, list or tuple that contains itself, or None."""
    if not isinstance(node, (dict, list, tuple)):
        return None
    if id(node) in open_containers:
        return path
    open_containers.add(id(node))
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, child in items:
        found = _cycle(child, f"{path}[{key!r}]", open_containers)
        if found:
            return found
    open_containers.discard(id(node))
    return None


def _path(accessor: Any, name: str) -> str:
    """The leaf's path as a user indexes it: optree's own (``x['W'][1]``, ``x.W``), or, for a class registered
    without a path entry type, each entry as an index (``x['W']``)."""
    path = str(accessor.codify(name))
    if "<flat index" not in path:
        return path
    return name + "".join(f"[{entry.entry!r}]" for entry in accessor)


def _round_trips(treedef: TreeDef, leaves: list[Any], name: str) -> None:
    """Refuse, by name, a registered container that does not rebuild as itself from its entries: func would be
    handed something else."""
    try:
        same = optree.tree_structure(treedef.unflatten(leaves), none_is_leaf=True, namespace=NAMESPACE) == treedef.spec
    except Exception as exc:  # a user's container type raising anything: refuse it, saying what it raised
        raise InvalidType(
            f"{name} holds a container that cannot be rebuilt from its entries ({type(exc).__name__}: {exc}); "
            f"pass {_CONTAINERS}, or fix its optree registration"
        ) from None
    if not same:
        raise InvalidType(
            f"{name} holds a container that does not rebuild as itself from its entries; pass {_CONTAINERS}, or "
            "fix its optree registration"
        )


def _not_an_array(leaf: Any, path: str, name: str) -> InvalidType:
    """The error for a leaf that is not an array, saying how to make a container class a tree if it is one."""
    if isinstance(leaf, (Mapping, list, tuple)):
        return InvalidType(
            f"{path} is a {type(leaf).__name__}, a container class gradcheck does not know how to walk; pass "
            f"{_CONTAINERS}, or register it: optree.register_pytree_node({type(leaf).__name__}, flatten, "
            f"unflatten, namespace={NAMESPACE!r})"
        )
    return InvalidType(
        f"{path} is a {type(leaf).__name__}; every leaf of {name} must be a numpy array of a floating dtype: wrap "
        "it with np.asarray(..., dtype=np.float64)"
    )


def float_leaves(tree: Any, name: str = "x") -> tuple[list[str], list[np.ndarray], TreeDef]:
    """Flatten ``tree`` and insist that every leaf is a floating-point ndarray; returns private copies."""
    paths, leaves, treedef = flatten(tree, name)
    if not leaves:
        raise InvalidArgument(
            f"{name} has no arrays in it ({type(tree).__name__} with no leaves); pass an ndarray or {_CONTAINERS}"
        )
    out = []
    for path, leaf in zip(paths, leaves):
        if isinstance(leaf, np.floating):
            leaf = np.asarray(leaf)  # a numpy float scalar is a 0-d leaf
        if not isinstance(leaf, np.ndarray):
            raise _not_an_array(leaf, path, name)
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
    if t.is_leaf:
        return "single array"
    return f"{t.spec.type.__name__} {optree.treespec_entries(t.spec)} ({t.num_leaves} arrays)"
