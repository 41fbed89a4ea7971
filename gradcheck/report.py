"""What a gradient check found, per leaf and per element, and how to print it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gradcheck.errors import UnknownLeaf

INCONCLUSIVE = ("", "coarse", "no smooth stencil", "flat")
"""Why an element is inconclusive, by its code in :attr:`LeafReport.unresolved`, where 0 means it is not.

- ``coarse``: f is smooth there, but its error bound is more than 5% of abs(analytic) (rounding swamps a
  derivative that is tiny beside f, or float32): no pass can rest on it.
- ``no smooth stencil``: f is smooth on no stencil from h down to h/8⁶, has no stable one-sided derivative and no
  jump at x: a singularity, a jump or several kinks lie within reach of x.
- ``flat``: f kept exactly its value at x within ±2h although the analytic value predicts a change above the
  noise: the analytic value is wrong (a mask forgotten on a flat stretch), or f is quantised more coarsely still.
"""

_RESOLVE = {
    "coarse": "check in float64, pass a larger step=, or an atol= below which a difference does not matter",
    "no smooth stencil": "move x away from the singularity or jump, or pass a step= smaller than its distance",
    "flat": "pass a larger step= to tell a flat stretch from a coarse quantisation; check the analytic mask",
}

__all__ = ["INCONCLUSIVE", "RULE", "GradientReport", "LeafReport", "Probe"]


@dataclass(frozen=True, eq=False)
class LeafReport:
    """One leaf of x: every element's analytic and numeric derivative, error estimate and tolerance."""

    path: str
    analytic: np.ndarray  # grad(x) at this leaf
    numeric: np.ndarray  # central differences, Richardson-extrapolated
    error: np.ndarray  # estimated error of ``numeric`` (truncation + rounding)
    tolerance: np.ndarray  # atol + rtol·max(|analytic|, |numeric|) + 2·error: a pass puts analytic within it of f′
    step: np.ndarray  # the step h used for each element
    kink: np.ndarray  # True where f is not differentiable at x and analytic lies between the one-sided slopes
    checked: np.ndarray | None = None  # fast mode: the elements that were differentiated (None: all of them)
    jump: np.ndarray | None = None  # size of a jump of func found at x (0 where func is continuous)
    rtol: float = float("nan")  # the relative tolerance this leaf was judged with
    unresolved: np.ndarray | None = None  # why each element is inconclusive: an index into INCONCLUSIVE (0: it is not)
    noise: np.ndarray | None = None  # the rounding of f each element was judged with (None: the report's noise)

    @property
    def threshold(self) -> np.ndarray:
        """The largest ``|analytic − numeric|`` that passes, ``atol + rtol·max(|analytic|, |numeric|) + error``,
        the tolerance less the error, since numeric itself may be off f′ by the error."""
        return np.asarray(self.tolerance - self.error)

    @property
    def inconclusive(self) -> np.ndarray:
        """Boolean mask of the elements the check could not resolve either way (see :data:`INCONCLUSIVE`)."""
        if self.unresolved is None:
            return np.zeros(self.shape, dtype=bool)
        result = np.asarray(self.unresolved > 0)
        return result if self.checked is None else result & self.checked

    @property
    def jumps(self) -> np.ndarray:
        """Boolean mask of the elements where func jumps at x (no derivative exists there); they fail."""
        return np.zeros(self.shape, dtype=bool) if self.jump is None else np.asarray(self.jump > 0)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.analytic.shape

    @property
    def dtype(self) -> np.dtype:
        return self.analytic.dtype

    @property
    def difference(self) -> np.ndarray:
        """``|analytic − numeric|`` per element, in float64 (nan where either is not finite)."""
        a, n = self.analytic.astype(np.float64), self.numeric
        with np.errstate(invalid="ignore"):
            d = np.asarray(np.abs(a - n))
        d[~(np.isfinite(a) & np.isfinite(n))] = np.nan
        return d

    @property
    def failed(self) -> np.ndarray:
        """Boolean mask of the elements that fail the rule (a nan anywhere fails); kinks are reported apart."""
        judged = (self.difference <= self.threshold) & np.isfinite(self.tolerance)
        failed = (~judged & ~self.kink & ~self.inconclusive) | self.jumps
        result: np.ndarray = failed if self.checked is None else failed & self.checked
        return result

    @property
    def ok(self) -> bool:
        return not self.failed.any()

    @property
    def ratio(self) -> np.ndarray:
        """``|analytic − numeric| / (tolerance − error)`` per element; the rule passes an element iff this is ≤ 1
        (nan → inf)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.asarray(self.difference / self.threshold)
        r[self.difference == 0] = 0.0
        r[np.isnan(r) | ~np.isfinite(self.tolerance)] = np.inf
        r[self.kink | self.inconclusive] = 0.0
        r[self.jumps] = np.inf
        if self.checked is not None:
            r[~self.checked] = 0.0
        return r

    @property
    def margin(self) -> float:
        """The largest ratio in this leaf; ≤ 1 passes, and how far below 1 says how close it came to failing."""
        return float(self.ratio.max()) if self.ratio.size else 0.0

    @property
    def worst(self) -> tuple[int, ...]:
        """Index of the element with the largest ratio (the first failure to look at); () for an empty leaf."""
        if not self.ratio.size:
            return ()
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(self.ratio)), self.shape))

    @property
    def max_abs_error(self) -> float:
        d = self.difference
        return float(np.nanmax(d)) if np.isfinite(d).any() else float("nan")

    @property
    def max_rel_error(self) -> float:
        mag = np.maximum(np.abs(self.analytic.astype(np.float64)), np.abs(self.numeric))
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(self.difference == 0, 0.0, self.difference / mag)
        return float(np.nanmax(rel)) if np.isfinite(rel).any() else float("nan")

    @property
    def resolution(self) -> float:
        """The coarsest relative error bound the conclusive elements of this leaf were judged at, the max over them of
        tolerance / abs(analytic). An analytic value wrong by more than this fraction fails wherever it is (or
        the element is inconclusive). Elements whose tolerance exceeds their own size passed on ``atol`` and are
        left out; inf when no element is left."""
        a = np.abs(self.analytic.astype(np.float64))
        keep = (a > 0) & np.isfinite(a) & np.isfinite(self.tolerance) & ~self.kink & ~self.jumps & ~self.inconclusive
        keep &= self.tolerance < a  # the others were judged against atol, in absolute terms
        if self.checked is not None:
            keep &= self.checked
        return float(np.max(self.tolerance[keep] / a[keep])) if keep.any() else float("inf")

    def describe_inconclusive(self, func_name: str, limit: int = 3) -> str:
        """One paragraph per reason: how many elements, the first few, and what would resolve them."""
        assert self.unresolved is not None
        lines = []
        codes = np.where(self.inconclusive, self.unresolved, 0)
        for code in sorted({int(c) for c in np.unique(codes)} - {0}):
            reason = INCONCLUSIVE[code]
            where = [tuple(int(k) for k in i) for i in np.argwhere(codes == code)]
            shown = "; ".join(
                f"{_index(i)}: analytic {float(self.analytic[i]):.6g}, numeric {self.numeric[i]:.6g} "
                f"± {self.error[i]:.2g}, step {self.step[i]:.2g}"
                for i in where[:limit]
            )
            more = f" and {len(where) - limit} more" if len(where) > limit else ""
            lines.append(
                f"d {func_name} / d {self.path}: {len(where)} of {codes.size} entries inconclusive ({reason}): "
                f"{shown}{more}; {_RESOLVE[reason]}"
            )
        return "\n  ".join(lines)

    def describe_failure(self, func_name: str, rtol: float, atol: float, limit: int = 5) -> str:
        """One paragraph naming the worst element, its values, the rule it broke and the other failures."""
        rtol = rtol if np.isnan(self.rtol) else self.rtol
        failed = self.failed
        i = self.worst
        a, n, e, h = self.analytic[i], self.numeric[i], self.error[i], self.step[i]
        d = self.difference[i]
        mag = max(abs(float(a)), abs(float(n))) if np.isfinite(a) and np.isfinite(n) else float("nan")
        where = _index(i)
        head = f"d {func_name} / d {self.path}: {int(failed.sum())} of {failed.size} entries differ; worst at {where}: "
        if self.jumps[i]:
            body = (
                f"{func_name} jumps by {float(np.asarray(self.jump)[i]):.3g} at x along this element "
                f"(analytic {float(a):.6g}); "
                f"{func_name} is not continuous there, so no derivative exists to check: move x off the jump, or "
                "make func continuous"
            )
        elif not np.isfinite(a):
            body = f"analytic {float(a):.6g} is not finite (numeric {n:.6g})"
        elif not np.isfinite(n):
            body = (
                f"numeric derivative is {n} ({func_name} was not finite within ±2·{h:.2g} of x); the gradient "
                "cannot be checked there: pass a smaller step="
            )
        elif not np.isfinite(self.tolerance[i]):
            body = (
                f"analytic {float(a):.6g}, numeric {n:.6g}, but the error estimate {e:.2g} is not finite: "
                f"{func_name} changes too much within ±2·{h:.2g} of x for the difference to be judged"
            )
        else:
            rel = d / mag if mag else float("inf")
            body = (
                f"analytic {float(a):.6g}, numeric {n:.6g} ± {e:.2g}; difference {d:.2g} (rel. {rel:.2g}) > "
                f"{self.threshold[i]:.2g} = atol {atol:.2g} + rtol {rtol:.2g}·{mag:.2g} + error estimate {e:.2g}"
            )
        text = f"{head}{body}; step {h:.2g}"
        others = [tuple(int(k) for k in idx) for idx in np.argwhere(failed) if tuple(idx) != i]
        if others:
            listed = ", ".join(
                f"{_index(k)}: analytic {float(self.analytic[k]):.6g} vs numeric "
                f"{self.numeric[k]:.6g} (difference {self.difference[k]:.2g})"
                for k in others[:limit]
            )
            more = f" and {len(others) - limit} more" if len(others) > limit else ""
            text += f"\n    also {listed}{more}"
        return text


def _index(i: tuple[int, ...]) -> str:
    return "()" if not i else f"({', '.join(map(str, i))}{',' if len(i) == 1 else ''})"


#: The rule every element is judged by, as the report prints it.
RULE = (
    "|analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|) + error, per element, on a stencil that shows "
    "f smooth; error = truncation + rounding + what a kink too small to show could shift; a pass needs "
    "error ≤ resolution·|analytic| + atol, else the element is inconclusive; a pass puts analytic within "
    "tolerance = that bound + error of the true derivative"
)


@dataclass(frozen=True)
class Probe:
    """Fast mode: the derivative along one random direction u, analytic ⟨grad, u⟩ against finite differences."""

    analytic: float
    numeric: float
    error: float
    tolerance: float
    note: str = ""
    explained: bool = False  # it failed, and the elements behind it were found and judged one by one
    smooth: bool = True  # f has no kink along the probe's stencil (else the difference proves nothing)

    @property
    def ok(self) -> bool:
        matches = (
            bool(abs(self.analytic - self.numeric) <= self.tolerance) and math.isfinite(self.tolerance) and self.smooth
        )
        return matches or self.note.startswith("kink") or self.explained

    @property
    def ratio(self) -> float:
        """``|analytic − numeric| / tolerance`` (0 for a direction explained by a kink or by judged elements)."""
        if self.note.startswith("kink") or self.explained:
            return 0.0
        d = abs(self.analytic - self.numeric)
        if d == 0:
            return 0.0
        return d / self.tolerance if self.tolerance > 0 and math.isfinite(d) else math.inf


@dataclass(frozen=True, eq=False)
class GradientReport:
    """The outcome of :func:`gradcheck.check_gradient`. ``ok`` is the verdict; ``str(report)`` is a table that
    names the worst element of each leaf. The error model behind ``numeric``, ``error`` and ``tolerance`` is
    described once, in the engine's documentation (:mod:`gradcheck._engine`).

    >>> import numpy as np
    >>> from gradcheck import check_gradient
    >>> f = lambda p: float(np.sum(p["w"] ** 2) + np.sum(p["b"]))
    >>> wrong = lambda p: {"w": 2 * p["w"] * np.array([1.0, 1.0, 0.5]), "b": np.ones(2)}   # one planted bug
    >>> report = check_gradient(f, wrong, {"w": np.array([1.0, 2.0, 3.0]), "b": np.zeros(2)})
    >>> report.ok, [leaf.path for leaf in report.failures], report.leaf("x['w']").worst
    (False, ["x['w']"], (2,))
    """

    leaves: list[LeafReport]
    rtol: float
    atol: float
    noise: float  # bound on the rounding error of one func evaluation, as estimated at x
    value: float  # func(x)
    func_name: str
    calls: int  # calls of func (a vectorized batch counts once; check_network's batched losses, none)
    problems: list[str] = field(default_factory=list)  # broken invariants (x mutated, grad not repeatable, …)
    rule: str = RULE
    mode: str = "full"
    probes: list[Probe] = field(default_factory=list)  # fast mode
    seed: int | None = None  # fast mode: rng=seed replays the run's directions exactly
    notes: list[str] = field(default_factory=list)  # what the check did differently (complex-step fallback, …)
    allow_inconclusive: bool = False  # whether inconclusive elements may pass the check

    @property
    def ok(self) -> bool:
        """The verdict, true when there is no broken invariant, no failing element or direction, and no
        inconclusive element unless they were allowed."""
        return (
            not self.problems
            and all(leaf.ok for leaf in self.leaves)
            and all(p.ok for p in self.probes)
            and (self.allow_inconclusive or not self.inconclusive)
        )

    @property
    def inconclusive(self) -> int:
        """How many elements the check could not resolve either way."""
        return sum(int(leaf.inconclusive.sum()) for leaf in self.leaves)

    def leaf(self, path: str) -> LeafReport:
        """The report of the leaf at ``path``, as the table prints it (``"x['weights'][0]"``)."""
        for leaf in self.leaves:
            if leaf.path == path:
                return leaf
        paths = [leaf.path for leaf in self.leaves]
        near = [p for p in paths if isinstance(path, str) and path and (p.endswith(f"[{path!r}]") or path in p)]
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise UnknownLeaf(f"report.leaf({path!r}): no such leaf; its leaves are {paths}{hint}")

    @property
    def failures(self) -> list[LeafReport]:
        return [leaf for leaf in self.leaves if not leaf.ok]

    @property
    def margin(self) -> float:
        """The largest ``|analytic − numeric| / tolerance`` over all elements and directions; ≤ 1 passes."""
        return max([leaf.margin for leaf in self.leaves] + [p.ratio for p in self.probes], default=0.0)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        size = sum(leaf.analytic.size for leaf in self.leaves)
        bad = sum(int(leaf.failed.sum()) for leaf in self.leaves)
        verdict = "passed" if self.ok else "FAILED"
        lines = [
            f"gradient check {verdict}: {bad} of {size} entries differ in {len(self.failures)} of "
            f"{len(self.leaves)} leaves; worst |difference|/tolerance {self.margin:.3g} (≤ 1 passes)"
        ]
        if self.inconclusive:
            allowed = "allowed by allow_inconclusive=True" if self.allow_inconclusive else "a check fails on them"
            lines[0] += f"; {self.inconclusive} entries inconclusive ({allowed})"
        if self.probes:
            lines[0] += f"; {sum(not p.ok for p in self.probes)} of {len(self.probes)} random directions failed"
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  note: {n}" for n in self.notes]
        if self.mode == "fast":
            lines.append(
                f"  fast mode: {len(self.probes)} random directions (seed {self.seed}: rng={self.seed} replays "
                "them); a failing direction is narrowed to one element by halving"
            )
            lines += [
                f"  direction {i}: ⟨grad, u⟩ {p.analytic:.10g}, numeric {p.numeric:.10g} ± {p.error:.2g}, "
                f"tolerance {p.tolerance:.2g}: {'ok' if p.ok else 'FAILED'}{' (' + p.note + ')' if p.note else ''}"
                for i, p in enumerate(self.probes)
            ]
        lines.append(f"  rule: {self.rule}")
        lines.append(
            f"  rtol {self.rtol:.3g}, atol {self.atol:.3g}, noise {self.noise:.3g}, "
            f"{self.func_name}(x) = {self.value:.6g}, {self.calls} calls"
        )
        lines += self._table()
        lines += ["  " + leaf.describe_failure(self.func_name, self.rtol, self.atol) for leaf in self.failures]
        lines += ["  " + leaf.describe_inconclusive(self.func_name) for leaf in self.leaves if leaf.inconclusive.any()]
        return "\n".join(lines)

    def _table(self) -> list[str]:
        """One row per leaf: failed, inconclusive, kinks, jumps, errors, resolution and margin."""
        header = (
            "leaf",
            "shape",
            "dtype",
            "failed",
            "unsure",
            "kinks",
            "jumps",
            "max abs err",
            "max rel err",
            "resolution",
            "margin",
        )
        rows = [header] + [
            (
                leaf.path,
                str(leaf.shape),
                str(leaf.dtype),
                f"{int(leaf.failed.sum())}/{leaf.analytic.size}",
                str(int(leaf.inconclusive.sum())),
                str(int(leaf.kink.sum())),
                str(int(leaf.jumps.sum())),
                f"{leaf.max_abs_error:.2g}",
                f"{leaf.max_rel_error:.2g}",
                f"{leaf.resolution:.2g}",
                f"{leaf.margin:.3g}",
            )
            for leaf in self.leaves
        ]
        widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
        return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]

    def __repr__(self) -> str:
        return f"<GradientReport ok={self.ok} leaves={len(self.leaves)} margin={self.margin:.3g}>"
