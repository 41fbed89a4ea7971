"""What func and grad are handed: fresh, writable, C-ordered, native-endian arrays in a fresh container on every
call, so that a func that caches, freezes, reshapes or keeps its argument cannot change what is checked."""

from __future__ import annotations

import numpy as np
import pytest

from gradcheck import check_gradient
from gradcheck.errors import InvalidType

X = np.array([0.3, -1.2, 2.0])


def cube(x):
    return float(np.sum(x**3))


def cube_grad(x):
    return 3 * x**2


def test_a_func_that_caches_by_identity_sees_every_point_and_a_wrong_gradient_fails():
    seen = {"x": None, "value": None}

    def cached(x):
        if x is not seen["x"]:  # a memo that trusts identity, as a lazy loss might
            seen["x"], seen["value"] = x, cube(x)
        return seen["value"]

    assert check_gradient(cached, cube_grad, X).ok
    assert not check_gradient(cached, lambda x: np.zeros_like(x), X).ok


def test_a_func_that_freezes_its_argument_is_checked_as_any_other():
    def freezing(x):
        x.setflags(write=False)
        return cube(x)

    assert check_gradient(freezing, cube_grad, X).ok
    assert not check_gradient(freezing, lambda x: cube_grad(x) * 1.01, X).ok


@pytest.mark.filterwarnings("ignore:Setting the shape on a NumPy array has been deprecated:DeprecationWarning")
def test_a_func_that_reshapes_its_argument_in_place_is_reported_not_a_crash():
    def reshaping(x):
        x.shape = (1, -1)
        return cube(x)

    report = check_gradient(reshaping, cube_grad, X)
    assert not report.ok
    assert any("reshaped x in place" in p for p in report.problems), report.problems


def test_a_func_that_changes_its_argument_in_place_is_reported_with_the_entry():
    def scaling(x):
        value = cube(x)
        x *= 2
        return value

    report = check_gradient(scaling, cube_grad, X)
    assert any("changed x in place: x[0]" in p for p in report.problems), report.problems


def test_a_big_endian_point_is_checked_in_native_order():
    big = X.astype(">f8")
    assert check_gradient(cube, cube_grad, big).ok
    assert check_gradient(cube, lambda x: cube_grad(x).astype(">f8"), big).ok
    assert not check_gradient(cube, lambda x: cube_grad(x) + 0.1, big).ok


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_an_np_matrix_is_refused_by_name_because_star_would_change_meaning():
    with pytest.raises(InvalidType, match=r"x\['W'\] is an np.matrix.*np.asarray"):
        check_gradient(lambda p: float(np.sum(p["W"])), lambda p: {"W": np.ones((2, 2))}, {"W": np.matrix(np.eye(2))})


def test_every_call_gets_new_arrays_in_a_new_container():
    handed = []

    def recording(p):
        handed.append((p, p["w"]))
        return cube(p["w"])

    check_gradient(recording, lambda p: {"w": cube_grad(p["w"])}, {"w": X})
    containers = {id(c) for c, _ in handed}
    arrays = {id(a) for _, a in handed}
    assert len(containers) == len(handed) and len(arrays) == len(handed)
    assert all(a.flags.writeable and a.flags.c_contiguous for _, a in handed)


def test_namedtuples_ordered_and_default_dicts_round_trip_to_func():
    from collections import OrderedDict, defaultdict, namedtuple

    Pair = namedtuple("Pair", "w b")
    trees = [
        Pair(w=X.copy(), b=X[:2].copy()),
        OrderedDict(w=X.copy(), b=X[:2].copy()),
        defaultdict(list, w=X.copy(), b=X[:2].copy()),
    ]
    for tree in trees:
        kinds = []

        def f(t, kinds=kinds):
            kinds.append(type(t))
            return cube(t["w"] if isinstance(t, dict) else t.w) + cube(t["b"] if isinstance(t, dict) else t.b)

        def g(t):
            if isinstance(t, dict):
                return type(t)(
                    *([t.default_factory] if isinstance(t, defaultdict) else []),
                    w=cube_grad(t["w"]),
                    b=cube_grad(t["b"]),
                )
            return Pair(cube_grad(t.w), cube_grad(t.b))

        assert check_gradient(f, g, tree).ok
        assert set(kinds) == {type(tree)}


def test_an_unknown_container_class_is_refused_by_name_with_how_to_register_it():
    class Labelled(dict):
        def __init__(self, label, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.label = label

    with pytest.raises(InvalidType, match=r"x is a Labelled, .*register_pytree_node\(Labelled, .*'gradcheck'"):
        check_gradient(lambda t: cube(t["w"]), lambda t: {"w": cube_grad(t["w"])}, Labelled("a", w=X))


def test_a_class_registered_with_optree_is_walked_and_rebuilt_as_itself():
    import optree

    class Params:
        def __init__(self, w, b):
            self.w, self.b = w, b

    optree.register_pytree_node(
        Params, lambda p: ((p.w, p.b), None, ("w", "b")), lambda _, c: Params(*c), namespace="gradcheck"
    )
    try:
        seen = []

        def f(p):
            seen.append(type(p))
            return cube(p.w) + cube(p.b)

        report = check_gradient(f, lambda p: Params(cube_grad(p.w), cube_grad(p.b) * 1.1), Params(X.copy(), X[:2]))
        assert set(seen) == {Params}
        assert [leaf.path for leaf in report.failures] == ["x['b']"]
    finally:
        optree.unregister_pytree_node(Params, namespace="gradcheck")


def test_a_registration_that_rebuilds_something_else_is_refused():
    import optree

    class Params(tuple):
        pass

    optree.register_pytree_node(Params, lambda p: (tuple(p), None), lambda _, c: list(c), namespace="gradcheck")
    try:
        with pytest.raises(InvalidType, match=r"does not rebuild as itself|cannot be rebuilt"):
            check_gradient(lambda t: cube(t[0]), lambda t: Params([cube_grad(t[0])]), Params([X.copy()]))
    finally:
        optree.unregister_pytree_node(Params, namespace="gradcheck")
