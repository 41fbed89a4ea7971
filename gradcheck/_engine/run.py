"""The engine's one entry point: f at x, the invariants (repeatable, x untouched), the noise, then every leaf judged
(element by element, or along random directions in fast mode)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck._engine.complex_step import complex_step_reports
from gradcheck._engine.evaluate import Evaluator, Perturbations, unrepeatable_sentence
from gradcheck._engine.fast import fast_reports
from gradcheck._engine.judge import RESOLUTION, judge_leaf
from gradcheck._engine.noise import estimate_noise
from gradcheck._engine.pytree import TreeDef, float_leaves, match_structure
from gradcheck.errors import InvalidArgument
from gradcheck.report import GradientReport, LeafReport, Probe

__all__ = ["Options", "check"]


@dataclass(frozen=True)
class Options:
    """How to check, as validated by the public checkers. Every option works in both modes, except the complex
    step, which differentiates every element (the public checker refuses it with ``probes``)."""

    rtol: float | None = None
    atol: float = 0.0
    step: float | None = None
    probes: int = 0  # 0: full mode; n: fast mode with n random directions per dtype
    rng: np.random.Generator | None = None  # fast mode's directions, drawn from np.random.default_rng(seed)
    seed: int | None = None
    complex_step: bool = False
    vectorized: bool = False  # func takes a leading batch axis on every leaf
    allow_inconclusive: bool = False  # elements the check cannot resolve do not fail it
    resolution: float = RESOLUTION  # the coarsest relative error bound a pass may rest on


def check(
    func: Callable[[Any], Any],
    grad: Callable[[Any], Any],
    x: Any,
    options: Options,
    perturbations: Perturbations | None = None,
) -> GradientReport:
    """The engine behind every checker: f at x, the invariants, the noise, then each leaf judged.

    func and grad run under the caller's floating-point settings; the engine's own arithmetic, which may overflow,
    underflow or meet nan harmlessly (tiny steps, func not finite at a perturbed point), runs with them ignored.
    ``perturbations`` evaluates many single-element perturbations of one leaf at once (check_network's).
    """
    caller = np.geterr()
    with np.errstate(all="ignore"):
        return _run(func, grad, x, options, dict(caller), perturbations)


def _run(
    func: Callable[[Any], Any],
    grad: Callable[[Any], Any],
    x: Any,
    options: Options,
    caller: dict[str, Any],
    perturbations: Perturbations | None,
) -> GradientReport:
    paths, leaves, treedef = float_leaves(x)
    ev = Evaluator(func, treedef, paths, leaves, caller, options.vectorized, perturbations)
    rtols = [math.sqrt(float(np.finfo(leaf.dtype).eps)) if options.rtol is None else options.rtol for leaf in leaves]
    if options.step is not None:
        _check_step_resolves(options.step, paths, ev.pristine)
    problems: list[str] = []
    f0 = ev.first_value(problems)
    _note_mutation(problems, ev, f"{ev.name}(x)")
    analytic = _analytic(ev, grad, treedef, paths, rtols, problems)
    common: dict[str, Any] = {
        "rtol": rtols[0] if len(set(rtols)) == 1 else max(rtols),
        "atol": options.atol,
        "value": f0,
        "func_name": ev.name,
        "allow_inconclusive": options.allow_inconclusive,
    }
    if problems and ev.unrepeatable:
        reports = [_unchecked(path, a, rtol_k) for path, a, rtol_k in zip(paths, analytic, rtols)]
        return GradientReport(leaves=reports, noise=float("nan"), calls=ev.calls, problems=problems, **common)
    noise = estimate_noise(ev, f0)
    reports, probes = _judge_all(ev, paths, analytic, f0, noise, rtols, options)
    _note_mutation(problems, ev, f"{ev.name}(x) while x was perturbed")
    ev.restore()
    _note_drift(problems, ev, f0, max(noise))
    notes: list[str] = []
    if options.complex_step:
        reports, note, calls = complex_step_reports(
            func, treedef, ev.pristine, reports, noise, caller, ev.name, options.atol
        )
        ev.calls += calls
        notes.append(note)
    notes += _notes(ev, paths, reports, rtols)
    return GradientReport(
        leaves=reports,
        noise=max(noise),
        calls=ev.calls,
        problems=problems,
        notes=notes,
        mode="fast" if options.probes else "full",
        probes=probes,
        seed=options.seed,
        **common,
    )


def _judge_all(
    ev: Evaluator,
    paths: list[str],
    analytic: list[np.ndarray],
    f0: float,
    noise: list[float],
    rtols: list[float],
    options: Options,
) -> tuple[list[LeafReport], list[Probe]]:
    """Every element of every leaf (full mode), or random directions and the elements behind failing ones."""
    if options.probes:
        assert options.rng is not None
        return fast_reports(
            ev,
            paths,
            analytic,
            f0,
            noise,
            rtols,
            options.atol,
            options.step,
            options.rng,
            options.probes,
            resolution=options.resolution,
        )
    return [
        judge_leaf(ev, k, path, a, f0, noise[k], rtol_k, options.atol, options.step, resolution=options.resolution)
        for k, (path, a, rtol_k) in enumerate(zip(paths, analytic, rtols))
    ], []


def _notes(ev: Evaluator, paths: list[str], reports: list[LeafReport], rtols: list[float]) -> list[str]:
    notes = []
    if ev.raised:
        notes.append(
            f"{ev.name} raised "
            + ", ".join(f"{name} {count}×" for name, count in ev.raised.items())
            + " at perturbed points (outside its domain, or under np.errstate/warning filters that raise); "
            "those points were treated as not finite"
        )
    if len(set(rtols)) > 1:
        notes.append(
            "rtol is √eps of each leaf's own dtype: "
            + ", ".join(f"{path} {r.rtol:.2g}" for path, r in zip(paths, reports))
        )
    return notes


def _analytic(
    ev: Evaluator,
    grad: Callable[[Any], Any],
    treedef: TreeDef,
    paths: list[str],
    rtols: list[float],
    problems: list[str],
) -> list[np.ndarray]:
    """grad(x), called twice: the first answer, after checking the second agrees with it and x is unchanged."""
    first = [g.copy() for g in match_structure(treedef, paths, ev.leaves, ev.call_grad(grad, problems), "grad(x)")]
    _note_mutation(problems, ev, "grad(x)")
    again = match_structure(treedef, paths, ev.leaves, ev.call_grad(grad, problems), "grad(x)")
    _note_unrepeatable(problems, first, again, paths, rtols)
    ev.restore()
    return first


def _unchecked(path: str, a: np.ndarray, rtol: float) -> LeafReport:
    nan = np.full(a.shape, np.nan)
    return LeafReport(
        path, a, nan, nan, nan, nan, np.zeros(a.shape, dtype=bool), np.zeros(a.shape, dtype=bool), rtol=rtol
    )


def _note_drift(problems: list[str], ev: Evaluator, f0: float, noise: float) -> None:
    """f(x) once more, after every perturbation: a func that keeps state across calls shows it here."""
    if ev.unrepeatable:
        return
    last = ev()
    if not abs(last - f0) <= max(noise, 64 * ev.f_eps * abs(f0)):
        ev.unrepeatable = True
        problems.append(
            unrepeatable_sentence(ev.name, f0, last) + " (the second value came after the check's other evaluations)"
        )


def _note_mutation(problems: list[str], ev: Evaluator, who: str) -> None:
    if who in ev.mutations and ev.mutations[who] not in problems:
        problems.append(ev.mutations[who])


def _note_unrepeatable(
    problems: list[str], first: list[np.ndarray], second: list[np.ndarray], paths: list[str], rtols: list[float]
) -> None:
    for path, a, b, rtol in zip(paths, first, second, rtols):
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
        differ = ~same & ~(np.abs(a64 - b64) <= rtol * np.maximum(np.abs(a64), np.abs(b64)))
        if differ.any():
            i = tuple(int(k) for k in np.argwhere(differ)[0])
            problems.append(
                f"grad(x) is not repeatable: {path}[{', '.join(map(str, i))}] was {float(a64[i]):.6g} on "
                f"the first call and {float(b64[i]):.6g} on the second at the same x; reset gradient "
                "buffers (zero them) at the start of each call, and keep grad deterministic"
            )
            return


def _check_step_resolves(step: float, paths: list[str], pristine: list[np.ndarray]) -> None:
    """A fixed step that rounds away at some element would differentiate nothing there."""
    for path, orig in zip(paths, pristine):
        flat = orig.reshape(-1).astype(np.float64)
        moved = (flat + step).astype(orig.dtype).astype(np.float64) - flat
        lost = np.flatnonzero(~(moved > 0))
        if lost.size:
            i = int(lost[0])
            raise InvalidArgument(
                f"step={step!r} is lost to rounding at {path}, flat element {i} = {flat[i]!r} "
                f"({orig.dtype}): x + step == x there; pass a larger step, or step=None to derive "
                "one per element"
            )
