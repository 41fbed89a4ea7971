"""The pytest plugin: a ``gradcheck`` fixture, a ``gradcheck`` marker, options, and a summary of the checks run.

Loaded through the ``pytest11`` entry point (``pytest -p no:gradcheck`` switches it off). It imports nothing heavy
until a test makes its first check. Defaults for each check come, strongest first, from the test's
``@pytest.mark.gradcheck(...)``, then the command line (``--gradcheck-mode/-rtol/-atol``), then the ini file
(``gradcheck_mode/_rtol/_atol``), then gradcheck's own.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import pytest

__all__ = [
    "CURRENT",
    "DEFAULTS",
    "OPTIONS",
    "RECORDS",
    "Checker",
    "gradcheck",
    "pytest_addoption",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_runtest_protocol",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_testnodedown",
]

OPTIONS = ("mode", "rtol", "atol", "method")
RECORDS = pytest.StashKey[list[Any]]()
DEFAULTS = pytest.StashKey[dict[str, Any]]()
CURRENT = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradient checks (gradcheck)")
    group.addoption(
        "--gradcheck-mode",
        choices=("full", "fast"),
        default=None,
        help="default mode of the gradcheck fixture: full (every element) or fast (random directions)",
    )
    group.addoption("--gradcheck-rtol", type=float, default=None, help="default rtol of the gradcheck fixture")
    group.addoption("--gradcheck-atol", type=float, default=None, help="default atol of the gradcheck fixture")
    parser.addini("gradcheck_mode", "default mode of the gradcheck fixture (full or fast)", default=None)
    parser.addini("gradcheck_rtol", "default rtol of the gradcheck fixture", default=None)
    parser.addini("gradcheck_atol", "default atol of the gradcheck fixture", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "gradcheck(rtol=None, atol=None, mode=None, method=None): defaults for the "
        "gradient checks made through the gradcheck fixture in this test",
    )
    config.stash[RECORDS] = []
    config.stash[DEFAULTS] = _configured(config)


def _configured(config: pytest.Config) -> dict[str, Any]:
    """The ini file's and the command line's defaults, checked once at start-up: a bad value stops pytest with a
    usage error naming the option, never a failure inside every test."""
    merged: dict[str, Any] = {}
    for name in ("mode", "rtol", "atol"):
        for source, value in (
            (f"ini option gradcheck_{name}", config.getini(f"gradcheck_{name}")),
            (f"--gradcheck-{name}", config.getoption(f"gradcheck_{name}", None)),
        ):
            if value in (None, ""):
                continue
            merged[name] = _parse(name, value, source)
    return merged


def _parse(name: str, value: Any, source: str) -> Any:
    if name == "mode":
        if value not in ("full", "fast"):
            raise pytest.UsageError(f"{source} = {value!r}; use full (every element) or fast (random directions)")
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (number >= 0 and number != float("inf")):
        raise pytest.UsageError(f"{source} = {value!r}; it must be a finite number >= 0, e.g. {name} = 1e-6")
    return number


def _marker_options(item: Any) -> dict[str, Any]:
    marker = item.get_closest_marker("gradcheck") if item is not None else None
    if marker is None:
        return {}
    from gradcheck.errors import InvalidArgument

    if marker.args:
        raise InvalidArgument(
            f"@pytest.mark.gradcheck{marker.args!r}: the marker takes keywords only, "
            f"e.g. @pytest.mark.gradcheck(rtol={marker.args[0]!r}); known: {', '.join(OPTIONS)}"
        )
    unknown = sorted(set(marker.kwargs) - set(OPTIONS))
    if unknown:
        raise InvalidArgument(f"@pytest.mark.gradcheck got unknown option(s) {unknown}; known: {', '.join(OPTIONS)}")
    return {k: v for k, v in marker.kwargs.items() if v is not None}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.when == "call" and (report.passed or (report.skipped and hasattr(report, "wasxfail"))):
        # checks that failed inside a test that passed, or failed as its xfail marker expected, were expected to
        # fail (pytest.raises, @pytest.mark.xfail)
        for record in item.config.stash.get(RECORDS, []):
            if record["test"] == item.nodeid and not record["ok"]:
                record["expected"] = True
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """The test being run, through setup, call and teardown: a check made in a fixture the test requests is made
    on its behalf, with its marker's options and under its name."""
    item.config.stash[CURRENT] = item
    try:
        return (yield)
    finally:
        item.config.stash[CURRENT] = None


class Checker:
    """The ``gradcheck`` fixture: ``gradcheck(func, grad, x, **options)``, ``.jacobian(...)``, ``.network(...)``,
    ``.torch(fn, *args, ...)`` and ``.jax(fn, *args, ...)``.

    Each raises :class:`gradcheck.GradientMismatch` with the full report when the check fails and returns the
    report otherwise. It keeps no state between checks, so it is session-scoped and safe inside ``@given``.
    """

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def __call__(self, func: Any, grad: Any, x: Any, **options: Any) -> Any:
        """:func:`gradcheck.check_gradient` with this test's defaults (marker, command line, ini file), raising
        :class:`gradcheck.GradientMismatch` with the report when the check fails; returns the report otherwise.
        In fast mode without ``rng=``, the directions are seeded from the test's id."""
        __tracebackhide__ = True
        from gradcheck.check import check_gradient

        opts = self._defaults(options)
        if opts.get("mode") == "fast" and "rng" not in opts:
            import numpy as np

            opts["rng"] = np.random.default_rng(zlib.crc32(self._test_id().encode()))  # reproducible per test
        return self._run(check_gradient, (func, grad, x), opts)

    def jacobian(self, func: Any, x: Any, **options: Any) -> Any:
        """:func:`gradcheck.check_jacobian` with this test's defaults for ``rtol`` and ``atol``, raising
        :class:`gradcheck.GradientMismatch` when it fails."""
        __tracebackhide__ = True
        from gradcheck.jacobian import check_jacobian

        opts = {k: v for k, v in self._defaults(options).items() if k not in ("mode", "method")}
        return self._run(check_jacobian, (func, x), opts)

    def network(self, net: Any, X: Any, Y: Any, **options: Any) -> Any:
        """:func:`gradcheck.check_network` with this test's defaults for ``rtol`` and ``atol``, raising
        :class:`gradcheck.GradientMismatch` when it fails."""
        __tracebackhide__ = True
        from gradcheck.network_check import check_network

        opts = {k: v for k, v in self._defaults(options).items() if k not in ("mode", "method")}
        return self._run(check_network, (net, X, Y), opts)

    def torch(self, fn: Any, *args: Any, **options: Any) -> Any:
        """:func:`gradcheck.torch.check_function` with this test's defaults for ``rtol`` and ``atol``."""
        __tracebackhide__ = True
        from gradcheck.torch import check_function

        return self._run(check_function, (fn, *args), self._tolerances(options))

    def jax(self, fn: Any, *args: Any, **options: Any) -> Any:
        """:func:`gradcheck.jax.check_function` with this test's defaults for ``rtol`` and ``atol``."""
        __tracebackhide__ = True
        from gradcheck.jax import check_function

        return self._run(check_function, (fn, *args), self._tolerances(options))

    def _tolerances(self, options: dict[str, Any]) -> dict[str, Any]:
        defaults = self._defaults({})
        return {**{k: defaults[k] for k in ("rtol", "atol") if k in defaults}, **options}

    def _run(self, check: Any, args: tuple[Any, ...], opts: dict[str, Any]) -> Any:
        __tracebackhide__ = True
        from gradcheck.errors import GradientMismatch

        start = time.perf_counter()
        report = check(*args, **opts)
        self._config.stash[RECORDS].append(
            {"test": self._test_id(), "ok": report.ok, "margin": report.margin, "seconds": time.perf_counter() - start}
        )
        if not report.ok:
            raise GradientMismatch(report)
        return report

    def _defaults(self, explicit: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        defaults: dict[str, Any] = self._config.stash.get(DEFAULTS, {})
        merged.update(defaults)
        merged.update(_marker_options(self._config.stash.get(CURRENT, None)))
        merged.update(explicit)
        return merged

    def _test_id(self) -> str:
        item = self._config.stash.get(CURRENT, None)
        return item.nodeid if item is not None else "<outside a test>"


@pytest.fixture(scope="session")
def gradcheck(pytestconfig: pytest.Config) -> Checker:
    """Check a hand-written gradient: ``gradcheck(loss, grad, params)``; see :class:`Checker`."""
    return Checker(pytestconfig)


# -- summary, serial and under pytest-xdist ------------------------------------------------------------------------
def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the records to the controller
        workeroutput["gradcheck"] = session.config.stash[RECORDS]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    node.config.stash[RECORDS].extend(getattr(node, "workeroutput", {}).get("gradcheck", []))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    records = config.stash.get(RECORDS, [])
    if not records or hasattr(config, "workerinput"):
        return
    failed = [r for r in records if not r["ok"] and not r.get("expected")]
    expected = [r for r in records if not r["ok"] and r.get("expected")]
    passed = [r for r in records if r["ok"]]
    line = f"gradcheck: {len(records)} gradient checks, {len(failed)} failed"
    if expected:
        line += f" ({len(expected)} more failed as their tests expected)"
    if passed:
        tight = max(passed, key=lambda r: r["margin"])
        line += f"; tightest margin {tight['margin']:.3g} ({tight['test']})"
    slow = max(records, key=lambda r: r["seconds"])
    line += f"; slowest {slow['seconds']:.3f} s ({slow['test']})"
    terminalreporter.write_sep("-", "gradcheck")
    terminalreporter.write_line(line)
    if config.getoption("verbose") > 0:
        per_test: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            per_test.setdefault(r["test"], []).append(r)
        for test, rs in sorted(per_test.items()):
            bad = sum(not r["ok"] for r in rs)
            terminalreporter.write_line(
                f"  {test}: {len(rs)} checks, {bad} failed, worst margin "
                f"{max(r['margin'] for r in rs):.3g}, {sum(r['seconds'] for r in rs):.3f} s"
            )
