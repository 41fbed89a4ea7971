"""The ``gradcheck`` command: the audit, the question answered, and the book's experiments, as tables and plots.

    gradcheck                     audit every combination, then answer the question in numbers
    gradcheck audit               the reference backprop against finite differences, as a table
    gradcheck vanishing           per-layer gradient sizes to depth 100, cross-entropy vs quadratic
    gradcheck nielsen             chapter 5's per-layer learning speeds on real digits, against the book
    gradcheck slowdown            chapter 3's single neuron, and the book animation's wrong gradient
    gradcheck check MOD:F MOD:G   check your own function and gradient

Every command takes --seed, --json (machine-readable output on stdout) and --out DIR (JSON and PNG files).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import numpy as np

from gradcheck import __version__
from gradcheck.errors import GradcheckError

__all__ = ["main", "parser", "subcommands"]


EXIT_OK, EXIT_WRONG, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is 0 when every check passed, 1 when a gradient is wrong, 2 for a
    usage error (a bad option, file or function) and 3 for an internal error. With ``--json`` every outcome,
    errors included, is one JSON object on stdout."""
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    try:
        args = parser().parse_args(argv)
    except _UsageError as error:
        return _fail(as_json, "usage", str(error), EXIT_USAGE, usage=error.usage)
    command = args.command or "report"
    stdout = sys.stdout
    try:
        # with --json, anything the user's code prints goes to stderr: stdout holds the one JSON object
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            _prepare_out(args.out)
            if args.out is not None and command in PLOTTED:
                from gradcheck.book.plots import require_matplotlib

                require_matplotlib()
            args.stdout = stdout
            return COMMANDS[command](args)
    except GradcheckError as error:
        return _fail(as_json, "usage", f"gradcheck {command}: {error}", EXIT_USAGE)
    except _UserExit as exit_:
        return _fail(as_json, "usage", f"gradcheck {command}: {exit_}", EXIT_USAGE)
    except MemoryError:
        return _fail(
            as_json,
            "usage",
            f"gradcheck {command}: not enough memory for these sizes; use a smaller --width, --batch or --images",
            EXIT_USAGE,
        )
    except BrokenPipeError:  # `gradcheck | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_WRONG
    except Exception as error:
        who = getattr(error, USER_CODE, None)
        if who is not None:  # the user's func or grad raised: their bug, with their traceback
            message = f"gradcheck {command}: {who} raised {type(error).__name__}: {error}"
            return _fail(as_json, "usage", message, EXIT_USAGE, trace=traceback.format_exc())
        # a bug of ours: say so, with what is needed to report it
        return _fail(
            as_json,
            "internal",
            f"gradcheck {command}: internal error {type(error).__name__}: {error}",
            EXIT_INTERNAL,
            trace=traceback.format_exc(),
        )


USER_CODE = "_gradcheck_raised_by"  # set on an exception raised by the user's own func or grad


class _UserExit(BaseException):
    """The user's func or grad called sys.exit while being checked (a BaseException, as SystemExit is, so that
    nothing on the way catches it)."""

    def __init__(self, who: str, code: object) -> None:
        super().__init__(
            f"{who} exited (sys.exit({code!r})) while being checked; a function to check must return a value, "
            "not end the program"
        )


def _user_code(fn: Callable[..., Any], who: str) -> Callable[..., Any]:
    """fn, with what it raises marked as the user's (and a sys.exit turned into a usage error)."""

    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except SystemExit as exc:
            raise _UserExit(who, exc.code) from None
        except Exception as exc:
            with contextlib.suppress(AttributeError, TypeError):
                setattr(exc, USER_CODE, who)
            raise

    return call


def _fail(as_json: bool, kind: str, message: str, status: int, *, usage: str = "", trace: str = "") -> int:
    if as_json:
        print(json.dumps({"ok": False, "exit_status": status, "error": {"kind": kind, "message": message}}, indent=2))
    else:
        print((usage + "\n" if usage else "") + message, file=sys.stderr)
        if trace:
            print(trace, file=sys.stderr)
    return status


def _prepare_out(out: str | None) -> None:
    if out is None:
        return
    from gradcheck.errors import InvalidArgument

    if not out.strip():
        raise InvalidArgument("--out '' names no folder; pass a folder to write the JSON and plots into")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument(
            f"--out {out!r}: cannot make that folder ({exc.strerror or exc}); name a folder, not a "
            "file or a path under one"
        ) from None


class _UsageError(Exception):
    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    """argparse, raising instead of exiting on a usage error, so that --json can report it as JSON too."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message}", self.format_usage().rstrip())


# -- the parser ----------------------------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command takes; on subcommands their defaults are suppressed so that either position works."""
    d = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    p.add_argument("--seed", type=_count, default=d(0), help="seed of every random draw, >= 0 (default 0)")
    p.add_argument("--json", action="store_true", default=d(False), help="print JSON instead of tables")
    p.add_argument("--out", metavar="DIR", default=d(None), help="also write JSON and PNG plots into DIR")
    p.add_argument("--no-progress", action="store_true", default=d(False), help="no progress bars on stderr")


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole numbers >= 1, e.g. 2,10,100")
    return values


def _positive(text: str) -> int:
    value = _count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 0")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive learning rate, e.g. 0.1")
    return value


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"{text!r} names no activation; give a comma-separated list, e.g. sigmoid,tanh"
        )
    return names


def parser() -> argparse.ArgumentParser:
    """The command's argument parser, subcommands included (the documentation's command reference is its help)."""
    top = _Parser(
        prog="gradcheck",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check the reference network's backprop against finite differences for every activation, "
        "output and cost, in float64 and float32, then answer the question: does cross-entropy help "
        "the hidden layers of a deep sigmoid network? (No: it changes only the output delta.)",
        epilog=__doc__.split("\n\n")[1],
    )
    top.add_argument("--version", action="version", version=f"gradcheck {__version__}")
    top.add_argument("--quick", action="store_true", help="audit float64 only, without the deep network")
    _common(top, top=True)
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_audit, _add_vanishing, _add_nielsen, _add_slowdown, _add_check):
        _common(add(sub), top=False)
    return top


def subcommands(top: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands' parsers of ``top`` (as built by :func:`parser`), by name, in the order they were added."""
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _add_audit(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "audit",
        help="the reference backprop against finite differences, every combination",
        description="Check Network.backprop with check_gradient for every activation × output × "
        "cost × dtype, plus a 10-layer sigmoid network. Exit status 1 if any fails.",
    )
    p.add_argument("--quick", action="store_true", default=argparse.SUPPRESS, help="float64 only, no deep network")
    return p


def _add_vanishing(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "vanishing",
        help="per-layer gradient sizes at initialisation to depth 100",
        description="‖δˡ‖ and ‖∂C/∂Wˡ‖ per hidden layer at initialisation, cross-entropy vs "
        "quadratic with the same weights, for each activation and depth; checks that "
        "δˡ_quadratic = σ′(zᴸ)·δˡ_CE (one output unit), so the decay is the same.",
    )
    p.add_argument(
        "--depths", type=_ints, default=[2, 5, 10, 20, 50, 100], help="hidden layers (default 2,5,10,20,50,100)"
    )
    p.add_argument(
        "--activations",
        type=_names,
        default=["sigmoid", "tanh", "relu"],
        help="hidden activations (default sigmoid,tanh,relu)",
    )
    p.add_argument("--width", type=_positive, default=30, help="units per hidden layer (default 30)")
    p.add_argument("--batch", type=_positive, default=100, help="inputs averaged over (default 100)")
    return p


def _add_nielsen(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "nielsen",
        help="chapter 5: how fast each hidden layer learns, against the book's table",
        description="Hidden layers of 30, network2's initialisation, cross-entropy, 1,000 inputs: "
        "‖∂C/∂bˡ‖ per hidden layer for 2, 3 and 4 hidden layers, as medians over "
        "--trials draws and as ratios to the last hidden layer, beside the book's.",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="PATH|digits|synthetic",
        help="MNIST folder (train-images-idx3-ubyte, train-labels-idx1-ubyte, optionally .gz), "
        "'digits' (scikit-learn's, the default when it is installed) or 'synthetic'",
    )
    p.add_argument("--images", type=_count, default=1000, help="training images used (default 1000)")
    p.add_argument("--trials", type=_count, default=10, help="initialisations drawn (default 10)")
    p.add_argument(
        "--epochs",
        type=_count,
        default=0,
        help="also train the 4-hidden-layer network this many epochs and record per-layer gradient "
        "norms (the book used 500; default 0, no training)",
    )
    p.add_argument("--eta", type=_rate, default=0.1, help="learning rate for --epochs (default 0.1)")
    return p


def _add_slowdown(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "slowdown",
        help="chapter 3: one neuron, quadratic vs cross-entropy",
        description="One sigmoid neuron, x = 1, y = 0, η = 0.15, from (w, b) = (0.6, 0.9) and "
        "(2, 2): output before and after, the plateau's length, learning curves; then "
        "the book animation's cross-entropy update 1/(1 − a) against the checker.",
    )
    p.add_argument("--epochs", type=_count, default=300, help="epochs of gradient descent (default 300)")
    p.add_argument("--eta", type=_rate, default=0.15, help="learning rate (default 0.15)")
    return p


def _add_check(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "check",
        help="check your own function and gradient",
        description="Check GRAD against finite differences of FUNC, both given as module:name "
        "(the current directory is importable). FUNC(x) returns a scalar, GRAD(x) its "
        "gradient with x's structure. Exit status 1 on a mismatch.",
    )
    p.add_argument("func", metavar="MODULE:FUNC")
    p.add_argument("grad", metavar="MODULE:GRAD")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--at",
        metavar="MODULE:NAME",
        help="the point x: an array, a pytree of arrays, or a function of no arguments returning one",
    )
    where.add_argument(
        "--shape",
        type=_ints,
        default=None,
        help="check at a standard normal x of this shape (default 5), drawn from --seed",
    )
    p.add_argument("--dtype", default="float64", choices=["float64", "float32", "float16"])
    p.add_argument("--mode", default="full", choices=["full", "fast"])
    p.add_argument("--method", default="central", choices=["central", "complex"])
    p.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: from the dtype)")
    p.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0)")
    return p


# -- helpers -------------------------------------------------------------------------------------------------------
def _progress(args: argparse.Namespace, what: str) -> Callable[[Iterable[Any]], Iterable[Any]]:
    """A tqdm progress bar on stderr, shown only on a terminal, without --no-progress and when tqdm is installed
    (``pip install tqdm``): a bar is a convenience, so without tqdm the work runs without one."""

    def wrap(items: Iterable[Any]) -> Iterable[Any]:
        if args.no_progress or args.json:
            return items
        try:
            from tqdm import tqdm
        except ImportError:
            return items
        bar: Iterable[Any] = tqdm(items, desc=what, leave=False, disable=None, file=sys.stderr)
        return bar

    return wrap


def _emit(args: argparse.Namespace, name: str, data: dict[str, Any], text: str) -> None:
    strict = _strict(data)
    if args.out is not None:
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump(strict, f, indent=2, allow_nan=False)
    stdout = getattr(args, "stdout", None) or sys.stdout
    if args.json:
        print(json.dumps(strict, indent=2, allow_nan=False), file=stdout)
    else:
        print(text, file=stdout)


def _strict(value: Any) -> Any:
    """``value`` as strict JSON: numpy scalars and arrays as numbers and lists, nan and ±inf as null (strict JSON
    parsers reject NaN and Infinity)."""
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, np.ndarray):
        return _strict(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _wrote(paths: list[str]) -> str:
    return "" if not paths else "\nwrote " + ", ".join(paths)


# -- commands ------------------------------------------------------------------------------------------------------
def _audit_rows(args: argparse.Namespace) -> tuple[list[dict[str, Any]], float]:
    from gradcheck.book.audit import audit, cases

    rng = np.random.default_rng(args.seed)
    quick = getattr(args, "quick", False)
    dtypes = ("float64",) if quick else ("float64", "float32")
    rows = []
    start = time.perf_counter()
    for case in _progress(args, "audit")(list(cases(rng, dtypes=dtypes, deep=0 if quick else 8))):
        report = audit(case)
        rows.append(
            {
                "case": case.label,
                "ok": report.ok,
                "max_rel_error": max(l.max_rel_error for l in report.leaves),
                "margin": report.margin,
                "resolution": min(l.resolution for l in report.leaves),
                "report": str(report) if not report.ok else None,
            }
        )
    return rows, time.perf_counter() - start


def _audit_text(rows: list[dict[str, Any]], elapsed: float) -> str:
    failed = [r for r in rows if not r["ok"]]
    width = max(len(r["case"]) for r in rows)
    lines = [f"{'network':<{width}}  verdict  max rel err  margin   resolution"]
    for r in rows:
        lines.append(
            f"{r['case']:<{width}}  {'ok' if r['ok'] else 'FAIL':<7}  {r['max_rel_error']:<11.2g}  "
            f"{r['margin']:<7.3f}  {r['resolution']:.2g}"
        )
    lines.append(
        f"\n{len(rows) - len(failed)} of {len(rows)} gradient checks passed in {elapsed:.1f} s "
        "(margin = worst |analytic - numeric| / tolerance; <= 1 passes)"
    )
    lines.extend("\n" + r["report"] for r in failed)
    return "\n".join(lines)


def _cmd_audit(args: argparse.Namespace) -> int:
    rows, elapsed = _audit_rows(args)
    failed = sum(not r["ok"] for r in rows)
    _emit(
        args,
        "audit",
        {"seed": args.seed, "seconds": elapsed, "failed": failed, "checks": rows},
        _audit_text(rows, elapsed),
    )
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from gradcheck.book.vanishing import answer, answer_text

    rows, elapsed = _audit_rows(args)
    failed = sum(not r["ok"] for r in rows)
    ans = answer(rng=np.random.default_rng(args.seed))
    _emit(
        args,
        "report",
        {"seed": args.seed, "audit": {"seconds": elapsed, "failed": failed, "checks": rows}, "answer": ans},
        _audit_text(rows, elapsed)
        + "\n\n"
        + answer_text(ans)
        + "\n\nMore: gradcheck vanishing | nielsen | slowdown | check MODULE:FUNC MODULE:GRAD (each with --help)",
    )
    return 1 if failed else 0


def _cmd_vanishing(args: argparse.Namespace) -> int:
    from gradcheck.book import vanishing

    result = vanishing.measure(
        depths=args.depths,
        activations=args.activations,
        width=args.width,
        batch=args.batch,
        rng=np.random.default_rng(args.seed),
        progress=_progress(args, "vanishing"),
    )
    data = {"seed": args.seed, **result.as_dict()}
    worst = max(result.identity_error.values())
    text = (
        vanishing.table(result)
        + f"\n\nδˡ_quadratic = σ′(zᴸ)·δˡ_cross-entropy per example in every hidden layer of every network above: "
        f"max rel. deviation {worst:.1e}.\nSo first/last and shrink/layer are the same under both costs: "
        "cross-entropy does not cure vanishing gradients."
    )
    paths = [vanishing.plot(result, os.path.join(args.out, "vanishing.png"))] if args.out else []
    _emit(args, "vanishing", data, text + _wrote(paths))
    return 0


def _cmd_nielsen(args: argparse.Namespace) -> int:
    from gradcheck.book import data as digits
    from gradcheck.book import nielsen

    rng = np.random.default_rng(args.seed)
    d = digits.load(args.data, rng=rng)
    comparisons = nielsen.compare(
        d, images=args.images, trials=args.trials, rng=rng, progress=_progress(args, "nielsen")
    )
    out = {
        "seed": args.seed,
        "data": d.source,
        "images": args.images,
        "inputs": int(d.X.shape[1]),
        "comparisons": [c.as_dict() for c in comparisons],
    }
    text = (
        f"data: {d.source}, first {args.images} images; medians over {args.trials} initialisations\n"
        + nielsen.table(comparisons)
        + "\n\nThe book's numbers are one unseeded draw on MNIST (784 inputs); compare the ratios."
    )
    paths = [nielsen.plot_comparison(comparisons, os.path.join(args.out, "nielsen.png"))] if args.out else []
    if args.epochs:
        training = nielsen.train(
            d, epochs=args.epochs, images=args.images, eta=args.eta, rng=rng, progress=_progress(args, "training")
        )
        out["training"] = training.as_dict()
        first, last = training.norms[0], training.norms[-1]
        text += (
            f"\n\ntrained {args.epochs} epochs (η = {args.eta}, mini-batches of 10): ‖∂C/∂bˡ‖ per hidden "
            f"layer went from {', '.join(f'{v:.3g}' for v in first)} to {', '.join(f'{v:.3g}' for v in last)};"
            f" accuracy on the training images {training.accuracy[0]:.2f} → {training.accuracy[-1]:.2f}"
        )
        if args.out:
            paths.append(nielsen.plot_training(training, os.path.join(args.out, "nielsen_training.png")))
    _emit(args, "nielsen", out, text + _wrote(paths))
    return 0


def _cmd_slowdown(args: argparse.Namespace) -> int:
    from gradcheck.book import slowdown

    runs = slowdown.runs(epochs=args.epochs, eta=args.eta, progress=_progress(args, "slowdown"))
    true, animation = slowdown.animation_bug()
    data = {
        "seed": args.seed,
        "runs": [r.as_dict() for r in runs],
        "animation_check": {
            "true_gradient_ok": true.ok,
            "true_gradient_margin": true.margin,
            "animation_gradient_ok": animation.ok,
            "animation_gradient_margin": animation.margin,
        },
    }
    text = (
        slowdown.table(runs) + "\n\n(slow epochs: until the output has covered a tenth of its whole drop)\n"
        f"The book's cross-entropy animation steps by ∂C/∂a = 1/(1 − a) instead of a − y. At w = b = 2 the "
        f"checker {'passes' if true.ok else 'FAILS'} the true gradient (margin {true.margin:.2g}) and "
        f"{'passes' if animation.ok else 'rejects'} the animation's (margin {animation.margin:.3g}):\n" + str(animation)
    )
    paths = [slowdown.plot(runs, os.path.join(args.out, "slowdown.png"))] if args.out else []
    _emit(args, "slowdown", data, text + _wrote(paths))
    return 0 if true.ok and not animation.ok else 1


def _cmd_check(args: argparse.Namespace) -> int:
    from gradcheck.check import check_gradient
    from gradcheck.errors import InvalidArgument

    func, grad = _load(args.func, "FUNC"), _load(args.grad, "GRAD")
    for name, obj in (("FUNC", func), ("GRAD", grad)):
        if not callable(obj):
            raise InvalidArgument(f"{name} {getattr(args, name.lower())!r} is a {type(obj).__name__}, not a function")
    func, grad = _user_code(func, f"FUNC {args.func!r}"), _user_code(grad, f"GRAD {args.grad!r}")
    if args.at is not None:
        x = _load(args.at, "--at")
        if callable(x):
            try:
                x = _user_code(x, f"--at {args.at!r}")()
            except TypeError as exc:
                raise InvalidArgument(
                    f"--at {args.at!r} is a function that cannot be called without arguments "
                    f"({exc}); name an array, or a function of no arguments that returns one"
                ) from None
    else:
        shape = tuple(args.shape) if args.shape else (5,)
        if math.prod(shape) > MAX_SHAPE_ELEMENTS:
            raise InvalidArgument(
                f"--shape {','.join(map(str, shape))} has {math.prod(shape):,} elements, more than the "
                f"{MAX_SHAPE_ELEMENTS:,} a full check can differentiate one by one; pass a smaller --shape"
            )
        x = np.random.default_rng(args.seed).standard_normal(shape).astype(args.dtype)
    rng = np.random.default_rng(args.seed) if args.mode == "fast" else None
    report = check_gradient(func, grad, x, rtol=args.rtol, atol=args.atol, mode=args.mode, method=args.method, rng=rng)
    data = {
        "seed": args.seed,
        "func": args.func,
        "grad": args.grad,
        "ok": report.ok,
        "margin": report.margin,
        "calls": report.calls,
        "leaves": [
            {
                "path": l.path,
                "shape": list(l.shape),
                "failed": int(l.failed.sum()),
                "max_rel_error": l.max_rel_error,
                "margin": l.margin,
                "worst": list(l.worst) if l.shape else [],
            }
            for l in report.leaves
        ],
        "report": str(report),
    }
    _emit(args, "check", data, str(report))
    return 0 if report.ok else 1


def _load(spec: str, what: str) -> Any:
    from gradcheck.errors import InvalidArgument

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidArgument(f"{what} {spec!r} must be module:name, e.g. mymodel:loss")
    if module_name.startswith("."):
        raise InvalidArgument(
            f"{what} {spec!r} names a relative module; name it as Python imports it from the current folder, "
            f"e.g. {module_name.lstrip('.') or 'mymodel'}:{attr}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = _import(module_name, spec, what)
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise InvalidArgument(f"{what} {spec!r}: {module_name} has no {attr!r}") from None
    return obj


def _import(module_name: str, spec: str, what: str) -> Any:
    """The user's module; whatever stops it importing (missing, broken, raising or exiting) is a usage error."""
    from gradcheck.errors import InvalidArgument

    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidArgument(
            f"{what} {spec!r}: cannot import {module_name!r} ({error}); run from the folder that holds it or install it"
        ) from None
    except SystemExit as exc:
        raise InvalidArgument(
            f"{what} {spec!r}: importing {module_name!r} exited (sys.exit({exc.code!r})); a module to check must "
            "not end the program when imported: put its script part under if __name__ == '__main__':"
        ) from None
    except Exception as error:  # a syntax error, or anything its top level raises
        raise InvalidArgument(
            f"{what} {spec!r}: importing {module_name!r} raised {type(error).__name__}: {error}; fix the module"
        ) from None


MAX_SHAPE_ELEMENTS = 10_000_000  # --shape: a full check differentiates every element, one call of func each


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "report": _cmd_report,
    "audit": _cmd_audit,
    "vanishing": _cmd_vanishing,
    "nielsen": _cmd_nielsen,
    "slowdown": _cmd_slowdown,
    "check": _cmd_check,
}
PLOTTED = {"vanishing", "nielsen", "slowdown"}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
