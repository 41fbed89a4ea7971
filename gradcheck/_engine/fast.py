"""Fast mode: derivatives along random directions; the elements behind a failing one found by halving and judged
as full mode judges them."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from gradcheck._engine.arith import SIX_SIGMA, safe_norm, step_scale
from gradcheck._engine.evaluate import Evaluator
from gradcheck._engine.judge import Verdict, judge_elements
from gradcheck.report import LeafReport, Probe

__all__ = ["fast_reports"]


class _Directions:
    """Fast mode's view of x as one flat vector: derivatives of f along displacements d, against ⟨grad, d⟩."""

    def __init__(
        self,
        ev: Evaluator,
        analytic: list[np.ndarray],
        f0: float,
        noise: list[float],
        rtols: list[float],
        atol: float,
        step: float | None,
    ) -> None:
        self.ev, self.f0, self.atol = ev, f0, atol
        self.starts = np.concatenate([[0], np.cumsum([a.size for a in analytic])]).astype(np.intp)
        self.g = np.concatenate([a.reshape(-1).astype(np.float64) for a in analytic])
        self.usable = np.isfinite(self.g)
        self.g[~self.usable] = 0.0
        sizes = [a.size for a in analytic]
        eps = [float(np.finfo(orig.dtype).eps) for orig in ev.pristine]
        self.eps = np.repeat(eps, sizes)
        self.rtol = np.repeat(rtols, sizes)
        self.noise = np.repeat(noise, sizes)
        self.group = np.repeat([str(orig.dtype) for orig in ev.pristine], sizes)
        self.scale = np.concatenate([_probe_scale(orig).reshape(-1) for orig in ev.pristine])
        if step is None:
            self.reach = np.concatenate(
                [_probe_scale(orig).reshape(-1) * e ** (1 / 3) for orig, e in zip(ev.pristine, eps)]
            )
        else:
            self.reach = np.full(self.g.size, step)

    def locate(self, i: int) -> tuple[int, int]:
        k = int(np.searchsorted(self.starts, i, side="right") - 1)
        return k, i - int(self.starts[k])

    def probe(self, d: np.ndarray) -> Probe:
        """Richardson differences of s ↦ f(x + s·d) at s = ±1, ±2 against ⟨grad, d⟩ for the displacements taken."""
        values, shifts = [], []
        for o in (1.0, -1.0, 2.0, -2.0):
            parts = [
                o * d[lo:hi].reshape(orig.shape)
                for orig, lo, hi in zip(self.ev.pristine, self.starts[:-1], self.starts[1:])
            ]
            value, taken = self.ev.along(parts)
            values.append(value - self.f0)
            shifts.append(np.concatenate([t.reshape(-1) for t in taken]))
        v = np.array(values)
        r1 = (v[0] - v[1]) / 2 - self.g @ (shifts[0] - shifts[1]) / 2
        r2 = (v[2] - v[3]) / 4 - self.g @ (shifts[2] - shifts[3]) / 4
        residual = r1 + (r1 - r2) / 3
        moved = d != 0
        noise = float(self.noise[moved].max()) if moved.any() else 0.0
        eps = max(self.ev.f_eps, float(self.eps[moved].max())) if moved.any() else self.ev.f_eps
        level = max(noise, eps * (abs(self.f0) + float(np.abs(v).max())))
        error = abs(r1 - r2) + 1.5 * level
        gd = self.g * d
        # Random signs make per-element errors add like a random walk: six standard deviations of it.
        tol = (
            6 * safe_norm((self.atol + self.rtol * np.abs(self.g)) * d)
            + 4 * float(np.sum(self.eps * np.abs(gd)))
            + error
        )
        exact = float(gd.sum())
        numeric = exact + residual if np.isfinite(residual) else float("nan")
        # A kink crossed on the way inflates |r1 − r2| and with it the tolerance: such a probe vouches for nothing,
        # whatever its difference. Its fourth difference shows it, as in full mode.
        smooth = abs(v[2] - 4 * v[0] - 4 * v[1] + v[3]) <= SIX_SIGMA * level
        return Probe(analytic=exact, numeric=numeric, error=float(error), tolerance=float(tol), smooth=bool(smooth))

    def narrow(self, d: np.ndarray) -> int:
        """The element behind a failing direction: halve the set of elements it moves, keeping a failing half."""
        members = np.flatnonzero(d)
        while members.size > 1:
            half = members[: members.size // 2]
            part = np.zeros_like(d)
            part[half] = d[half]
            members = half if not self.probe(part).ok else members[members.size // 2 :]
        return int(members[0])


def _probe_scale(x: np.ndarray) -> np.ndarray:
    """How strongly a random direction moves each element: max(its own scale, the RMS of its leaf), so that a
    small element is probed as strongly as its neighbours. An element a direction implicates is then judged with
    its own step, as full mode judges it."""
    own = step_scale(x)
    base = np.abs(x.astype(np.float64))
    top = float(base.max()) if base.size else 0.0
    if not (top > 0 and np.isfinite(top)):
        return own
    rms = top * float(np.sqrt(np.mean((base / top) ** 2)))
    info = np.finfo(x.dtype)
    return np.maximum(own, rms) if rms * float(info.eps) > float(info.tiny) else own


def fast_reports(
    ev: Evaluator,
    paths: list[str],
    analytic: list[np.ndarray],
    f0: float,
    noise: list[float],
    rtols: list[float],
    atol: float,
    step: float | None,
    rng: np.random.Generator,
    count: int,
    *,
    resolution: float,
) -> tuple[list[LeafReport], list[Probe]]:
    """Random-direction checks; the elements behind a failing one are found by halving and judged as in full mode.

    Each dtype gets its own directions: a direction that moved float32 and float64 leaves together would judge the
    float64 ones with float32's tolerance."""
    dirs = _Directions(ev, analytic, f0, noise, rtols, atol, step)
    verdicts: dict[int, Verdict] = {}

    def judge(i: int) -> None:
        k, local = dirs.locate(i)
        a = analytic[k].reshape(-1)[local : local + 1].astype(np.float64)
        verdicts[i] = judge_elements(
            ev, k, np.array([local]), a, f0, noise[k], rtols[k], atol, step, resolution=resolution
        )

    for i in np.flatnonzero(~dirs.usable)[:64]:  # a nan or inf in grad(x) fails where it is
        judge(int(i))
    probes = []
    for group in sorted(set(dirs.group)):
        for _ in range(count):
            d = rng.choice([-1.0, 1.0], size=dirs.g.size) * dirs.reach
            d[~dirs.usable | (dirs.group != group)] = 0.0
            probes.append(_explain(dirs, d, judge, verdicts))
    reports = [_leaf_report(dirs, verdicts, k, path, a, rtols[k]) for k, (path, a) in enumerate(zip(paths, analytic))]
    return reports, probes


def _leaf_report(
    dirs: _Directions, verdicts: dict[int, Verdict], k: int, path: str, a: np.ndarray, rtol: float
) -> LeafReport:
    """Leaf k's report: the elements fast mode judged one by one, and nan (unchecked) elsewhere."""
    fields = {name: np.full(a.size, np.nan) for name in ("numeric", "error", "tolerance", "h", "jump")}
    kink, checked = np.zeros(a.size, dtype=bool), np.zeros(a.size, dtype=bool)
    unresolved = np.zeros(a.size, dtype=np.int8)
    for i, v in verdicts.items():
        kk, local = dirs.locate(i)
        if kk == k:
            for name in fields:
                fields[name][local] = getattr(v, name)[0]
            kink[local], checked[local], unresolved[local] = v.kink[0], True, v.unresolved[0]
    fields["jump"][~checked] = 0.0
    numeric, error, tolerance, h = (fields[n].reshape(a.shape) for n in ("numeric", "error", "tolerance", "h"))
    return LeafReport(
        path,
        a,
        numeric,
        error,
        tolerance,
        h,
        kink.reshape(a.shape),
        checked.reshape(a.shape),
        jump=fields["jump"].reshape(a.shape),
        rtol=rtol,
        unresolved=unresolved.reshape(a.shape),
    )


def _sharpen(dirs: _Directions, d: np.ndarray, p: Probe) -> tuple[np.ndarray, Probe]:
    """A longer step where rounding swamps the derivative along d (as full mode enlarges an element's step), at
    most 1000× and a tenth of each element's scale; kept when it is smooth and more precise."""
    mag = max(abs(p.analytic), abs(p.numeric)) if math.isfinite(p.numeric) else 0.0
    if not (p.smooth and math.isfinite(p.error) and p.error > 0.01 * mag and mag > 0):
        return d, p
    moved = d != 0
    room = float(np.min(0.1 * dirs.scale[moved] / np.abs(d[moved]))) if moved.any() else 0.0
    factor = min(1000.0, p.error / (0.003 * mag), room)
    if factor <= 2:
        return d, p
    longer = dirs.probe(d * factor)
    if longer.smooth and math.isfinite(longer.error) and longer.error / factor < p.error:
        return d * factor, longer
    return d, p


def _explain(
    dirs: _Directions, d: np.ndarray, judge: Callable[[int], None], verdicts: dict[int, Verdict], most: int = 64
) -> Probe:
    """Probe along d; while it fails, find an element behind it, judge that element, and probe without it."""
    first = dirs.probe(d)
    d, first = _sharpen(dirs, d, first)
    if first.ok:
        return first
    # A kink on the path spoils the coarse differences. Steps 8x and 64x smaller that both pass, agree with each
    # other, disagree with the first and are nearly as sensitive (tolerance, in units of the step, at most twice
    # the first one's) settle it: a match at one smaller step alone can be a coincidence of kinks.
    fine, finer = dirs.probe(d / 8), dirs.probe(d / 64)
    sensitive = 64 * finer.tolerance <= 2 * first.tolerance and 8 * fine.tolerance <= 2 * first.tolerance
    converged = abs(8 * fine.numeric - 64 * finer.numeric) <= 8 * fine.error + 64 * finer.error
    if (
        fine.ok
        and finer.ok
        and sensitive
        and converged
        and abs(first.numeric - 8 * fine.numeric) > first.error + 8 * fine.error
    ):
        return replace(first, note=f"kink on the path: steps 8x and 64x smaller give {8 * fine.numeric:.6g}")
    rest, p = d.copy(), first
    found: list[int] = []
    while not p.ok and len(found) < most and rest.any():
        i = dirs.narrow(rest)
        if i not in verdicts:
            judge(i)
        found.append(i)
        rest[i] = 0.0
        if not rest.any():
            break
        p = dirs.probe(rest)
    named = ", ".join(str(i) for i in found)
    if p.ok or not rest.any():
        return replace(first, note=f"explained by flat element(s) {named}, judged one by one", explained=True)
    return replace(
        first,
        note=f"still failing after judging flat element(s) {named}: a wrong element the halving "
        "could not isolate, or kinks in more elements than fast mode follows; run mode='full'",
    )
