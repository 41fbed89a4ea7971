"""Verdicts and time on the zoo of torch Functions and jax custom rules (tests/frameworks/zoo.py): 12 correct rules
and 12 with a planted bug, in float32 and float64, judged by gradcheck.torch / gradcheck.jax, by
torch.autograd.gradcheck (default and fast mode) and by jax.test_util.check_grads, all in one run.

``extra_info["verdicts"]`` holds, per checker, the false failures (a correct rule failed), the missed bugs (a bugged
rule passed) and the total time; ``summarize.py`` tabulates them. A bug below what the dtype can resolve (one entry
off by 1e-3 in float32) is left out of the missed-bug count for every checker alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.frameworks.zoo import BUGS, CORRECT, jax_entry, torch_entry

UNRESOLVABLE = {("one entry scaled by 1 + 1e-3", "float32")}


def _cases() -> list[tuple[str, str | None]]:
    return [(name, None) for name in CORRECT] + [(BUGS[bug], bug) for bug in sorted(BUGS)]


def _tally(checkers: dict[str, Callable[[Any, list[Any]], bool]], entry: Callable[..., Any], dtypes: dict[str, Any]):
    tally = {
        name: {"false failures": 0, "missed bugs": 0, "seconds": 0.0, "cases": 0, "missed": []} for name in checkers
    }
    for dtype_name, dtype in dtypes.items():
        for name, bug in _cases():
            for checker, judge in checkers.items():
                fn, args = entry(name, bug, dtype)
                start = time.perf_counter()
                try:
                    passed = bool(judge(fn, args))
                except Exception:  # a checker that raises has failed the rule
                    passed = False
                row = tally[checker]
                row["seconds"] += time.perf_counter() - start
                row["cases"] += 1
                if bug is None and not passed:
                    row["false failures"] += 1
                elif bug is not None and passed and (bug, dtype_name) not in UNRESOLVABLE:
                    row["missed bugs"] += 1
                    row["missed"].append(f"{bug} ({dtype_name})")
    return tally


def test_torch_rules(benchmark):
    torch = pytest.importorskip("torch", reason="torch is not installed (tox -e bench installs it)")
    from gradcheck.torch import check_function

    def theirs(fast: bool) -> Callable[[Any, list[Any]], bool]:
        def judge(fn: Any, args: list[Any]) -> bool:
            inputs = tuple(a.detach().clone().requires_grad_(True) for a in args)
            return bool(torch.autograd.gradcheck(fn, inputs, raise_exception=False, fast_mode=fast))

        return judge

    checkers = {
        "gradcheck.torch": lambda fn, args: check_function(fn, *args).ok,
        "torch.autograd.gradcheck": theirs(False),
        "torch.autograd.gradcheck, fast_mode": theirs(True),
    }
    dtypes = {"float64": torch.float64, "float32": torch.float32}
    tally = benchmark.pedantic(_tally, args=(checkers, torch_entry, dtypes), rounds=1, iterations=1)
    benchmark.group = "gradient rules"
    benchmark.extra_info["verdicts"] = tally
    ours = tally["gradcheck.torch"]
    assert ours["false failures"] == 0 and ours["missed bugs"] == 0, tally


def test_jax_rules(benchmark):
    jax = pytest.importorskip("jax", reason="jax is not installed (tox -e bench installs it)")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.test_util import check_grads

    from gradcheck.jax import check_function

    def theirs(fn: Any, args: list[Any]) -> bool:
        modes = ("fwd", "rev") if isinstance(fn, jax.custom_jvp) else ("rev",)
        try:
            check_grads(fn, tuple(args), order=1, modes=modes)
        except AssertionError:
            return False
        return True

    checkers = {"gradcheck.jax": lambda fn, args: check_function(fn, *args).ok, "jax check_grads": theirs}
    dtypes = {"float64": jnp.float64, "float32": jnp.float32}
    tally = benchmark.pedantic(_tally, args=(checkers, jax_entry, dtypes), rounds=1, iterations=1)
    benchmark.group = "gradient rules"
    benchmark.extra_info["verdicts"] = tally
    ours = tally["gradcheck.jax"]
    assert ours["false failures"] == 0 and ours["missed bugs"] == 0, tally


@pytest.mark.parametrize("shape", [(40, 50), (100, 100)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_a_large_torch_rule_against_torch_gradcheck(benchmark, shape):
    """softplus over 2,000 and 10,000 inputs: ours (batched through vmap) and torch's slow mode, back to back."""
    torch = pytest.importorskip("torch", reason="torch is not installed (tox -e bench installs it)")
    from gradcheck.torch import check_function

    x = torch.tensor(np.random.default_rng(0).standard_normal(shape))
    check_function(torch.nn.functional.softplus, x)  # warm torch.func up
    benchmark.group = "a large torch rule"
    report = benchmark.pedantic(check_function, args=(torch.nn.functional.softplus, x), rounds=3, iterations=1)
    start = time.perf_counter()
    ok = torch.autograd.gradcheck(torch.nn.functional.softplus, (x.clone().requires_grad_(True),))
    theirs = time.perf_counter() - start
    stats = getattr(benchmark, "stats", None)
    ours = stats.stats.median if stats is not None and getattr(stats, "stats", None) is not None else None
    benchmark.extra_info.update(inputs=int(x.numel()), torch_gradcheck_s=round(theirs, 4), ours_s=ours)
    assert report.ok and ok
