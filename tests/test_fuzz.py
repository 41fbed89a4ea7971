"""Fuzzing the public surface: garbage in, and nothing but gradcheck's own exceptions (or a report) out.

Every public function and the command's parser are called with Hypothesis-drawn arguments of every kind: None,
bools, huge integers, nan and inf, strings, nested containers (self-referencing too), arrays of every dtype and
shape, and callables that return any of these. A call may return or raise a :class:`GradcheckError`; anything
else (a TypeError from deep inside numpy, a RecursionError, an OverflowError) is a raw traceback a user would see.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradcheck import GradcheckError, Network, check_gradient, check_jacobian, check_network
from gradcheck.book.cli import main

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**400), 10**400),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.complex_numbers(max_magnitude=1e3),
)
ARRAYS = hnp.arrays(
    st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128, np.float16]),
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    elements={"allow_nan": True, "allow_infinity": True} if False else None,
)
VALUES = st.recursive(
    st.one_of(SCALARS, ARRAYS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.tuples(inner, inner), st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=6,
)


def returning(values):
    return values.map(lambda v: lambda *args, **kwargs: v)


def tame(function):
    """A user callable that never raises (what it raises would be the user's own traceback, not ours): it returns
    nan instead."""

    def called(*args, **kwargs):
        try:
            with np.errstate(all="ignore"):
                return function(*args[:1])
        except Exception:
            return float("nan")

    return called


CALLABLES = st.one_of(returning(VALUES), st.sampled_from([tame(np.sum), tame(np.sin), tame(lambda x: x)]))
ARGUMENT = st.one_of(VALUES, CALLABLES)


def self_referencing():
    loop: list = [np.zeros(2)]
    loop.append(loop)
    return loop


def calls(function, **kwargs):
    try:
        function(**kwargs)
    except GradcheckError:
        pass


FUZZ = settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
    deadline=None,
)


@FUZZ
@given(
    func=ARGUMENT,
    grad=ARGUMENT,
    x=st.one_of(VALUES, st.just(self_referencing())),
    options=st.dictionaries(
        st.sampled_from(["rtol", "atol", "step", "mode", "probes", "method", "vectorized"]), VALUES, max_size=3
    ),
)
def test_check_gradient_raises_only_its_own_errors(func, grad, x, options):
    with np.errstate(all="ignore"):
        calls(check_gradient, func=func, grad=grad, x=x, **options)


@FUZZ
@given(
    func=ARGUMENT,
    x=VALUES,
    which=st.sampled_from(["jacobian", "vjp", "jvp"]),
    analytic=ARGUMENT,
    options=st.dictionaries(st.sampled_from(["rtol", "atol"]), VALUES, max_size=2),
)
def test_check_jacobian_raises_only_its_own_errors(func, x, which, analytic, options):
    with np.errstate(all="ignore"):
        calls(check_jacobian, func=func, x=x, **{which: analytic}, **options)


@FUZZ
@given(
    sizes=st.one_of(VALUES, st.lists(st.integers(-3, 2000), max_size=4), st.just([10**6, 10**6])),
    options=st.dictionaries(
        st.sampled_from(["activation", "output", "cost", "l2", "dtype", "weights", "biases"]), VALUES, max_size=3
    ),
)
def test_network_raises_only_its_own_errors(sizes, options):
    with np.errstate(all="ignore"):
        calls(Network, sizes=sizes, rng=np.random.default_rng(0), **options)


@FUZZ
@given(X=VALUES, Y=VALUES, options=st.dictionaries(st.sampled_from(["rtol", "atol", "grad"]), ARGUMENT, max_size=2))
def test_network_methods_and_check_network_raise_only_their_own_errors(X, Y, options):
    net = Network([2, 3, 1], rng=np.random.default_rng(0))
    with np.errstate(all="ignore"):
        calls(net.backprop, X=X, Y=Y)
        calls(net.loss, X=X, Y=Y)
        calls(check_network, net=net, X=X, Y=Y, **options)


def builder_options(name):
    import inspect

    from gradcheck import strategies

    builder = getattr(strategies, name)
    keywords = sorted(
        name for name, p in inspect.signature(builder).parameters.items() if p.kind is not p.VAR_KEYWORD
    ) + (["weight_scale", "bogus"] if name == "problems" else [])
    return st.tuples(st.just(builder), st.dictionaries(st.sampled_from(keywords), VALUES, max_size=3))


@FUZZ
@given(case=st.one_of(*(builder_options(name) for name in ("architectures", "networks", "problems"))))
def test_strategy_builders_raise_only_their_own_errors(case):
    builder, options = case
    calls(builder, **options)


WORDS = st.sampled_from(
    [
        "audit",
        "vanishing",
        "nielsen",
        "slowdown",
        "check",
        "--seed",
        "--json",
        "--out",
        "--depths",
        "--activations",
        "--width",
        "--batch",
        "--data",
        "--images",
        "--trials",
        "--epochs",
        "--eta",
        "--at",
        "--shape",
        "--dtype",
        "--mode",
        "--rtol",
        "-1",
        "0",
        "nan",
        "1e400",
        "",
        ",",
        "x:y",
        "sigmoid",
        "2,3",
    ]
)


@FUZZ
@given(argv=st.lists(st.one_of(WORDS, st.text(max_size=6)), max_size=6))
def test_the_command_parser_answers_every_argument_list_with_a_status(argv, capsys):
    argv = [
        a
        for a in argv
        if a not in ("-h", "--help", "--version") and not a.startswith("--h") and not a.startswith("--v")
    ]
    if argv[:1] in (["audit"], []) or "--out" in argv:  # a run, not a parse; and no files written
        argv = ["vanishing", "--seed", "x"] + argv
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own help paths
        status = exit_.code
    capsys.readouterr()
    assert status in (0, 1, 2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 10**400, "1e-6", True])
def test_tolerances_are_checked_by_name(bad):
    with pytest.raises(GradcheckError, match="rtol="):
        check_gradient(np.sum, np.ones_like, np.zeros(2), rtol=bad)
