"""The ``gradcheck`` command."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

import numpy as np

from gradcheck import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="gradcheck",
        description="Check the reference network's backprop against finite differences for every activation, "
                    "output and cost, in float64 and float32, and print a table of verdicts.")
    parser.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the networks and data (default 0)")
    parser.add_argument("--quick", action="store_true", help="float64 only, no deep network")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    return _audit(args)


def _audit(args: argparse.Namespace) -> int:
    from gradcheck.audit import audit, cases

    rng = np.random.default_rng(args.seed)
    dtypes = ("float64",) if args.quick else ("float64", "float32")
    rows = []
    start = time.perf_counter()
    for case in cases(rng, dtypes=dtypes, deep=0 if args.quick else 8):
        report = audit(case)
        rows.append({"case": case.label, "ok": report.ok, "max_rel_error": max(l.max_rel_error for l in report.leaves),
                     "margin": report.margin, "resolution": min(l.resolution for l in report.leaves),
                     "report": str(report) if not report.ok else None})
    elapsed = time.perf_counter() - start
    failed = [r for r in rows if not r["ok"]]
    if args.json:
        print(json.dumps({"seed": args.seed, "seconds": elapsed, "failed": len(failed), "checks": rows}, indent=2))
    else:
        width = max(len(r["case"]) for r in rows)
        print(f"{'network':<{width}}  verdict  max rel err  margin   resolution")
        for r in rows:
            print(f"{r['case']:<{width}}  {'ok' if r['ok'] else 'FAIL':<7}  {r['max_rel_error']:<11.2g}  "
                  f"{r['margin']:<7.3f}  {r['resolution']:.2g}")
        print(f"\n{len(rows) - len(failed)} of {len(rows)} gradient checks passed in {elapsed:.1f} s "
              "(margin = worst |analytic - numeric| / tolerance; <= 1 passes)")
        for r in failed:
            print("\n" + r["report"])
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
