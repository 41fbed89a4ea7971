"""Write the documentation's benchmarks page from one pytest-benchmark run.

    tox -e bench
    python benchmarks/summarize.py .benchmarks/bench.json docs/benchmarks.md

The page is headed by the run's environment (CPU, cores, BLAS, library versions, the command). Every figure comes
from that one run, and every ratio compares two timings taken in that run, most of them in interleaved rounds (see
``test_bench_ratios.py``). The analysis between the tables says what limits each figure; it quotes the run's own
numbers, so regenerating the page updates it.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

NAMES = {
    "test_gradcheck_backprop": "Network.backprop",
    "test_numpy_matrix_reference": "clean numpy",
    "test_per_example_loop": "per-example loop",
    "test_torch_eager": "torch eager",
    "test_jax_jit": "jax jit",
    "test_matmul_ceiling": "matmuls only",
    "test_check_network_every_parameter": "check_network",
    "test_check_gradient_fast_mode": "check_gradient, fast mode",
    "test_check_gradient_default_mode": "check_gradient, full mode",
    "test_torch_autograd_gradcheck": "torch.autograd.gradcheck",
    "test_jax_check_grads": "jax check_grads",
    "test_numdifftools_gradient": "numdifftools.Gradient + allclose",
}
RIVALS = ("clean numpy", "torch eager", "jax jit", "matmuls only", "torch matmuls only")
CHECK_GROUP = "check [784,30,10] batch 10"


def fmt(seconds: float) -> str:
    """A duration with three significant digits in the unit that suits it."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def environment(data: dict[str, Any]) -> list[str]:
    machine = data["machine_info"]
    env = machine.get("gradcheck_environment", {})
    versions = ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items() if v)
    return [
        f"- **CPU:** {machine.get('cpu', {}).get('brand_raw', '?')}, {env.get('cores', '?')} cores",
        f"- **BLAS (numpy's):** {env.get('blas', '?')}",
        f"- **Python:** {machine.get('python_implementation', '')} {machine.get('python_version', '?')}",
        f"- **Libraries:** {versions}",
        f"- **Run:** `{env.get('command', '?')}` (from `tox -e bench`), {data.get('datetime', '?')[:16]} UTC",
    ]


def grouped(data: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    groups: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        name = NAMES.get(bench["name"].split("[")[0], bench["name"])
        param = bench["name"].split("[", 1)[1][:-1] if "[" in bench["name"] else ""
        groups[bench["group"] or ""][name if not param or name in RIVALS else f"{name}|{param}"] = bench
    return groups


def checking_table(group: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, float]]:
    base = group["check_network"]["stats"]["median"]
    rows = ["| checker | median | ÷ check_network | calls of the loss |", "|---|---|---|---|"]
    medians = {}
    for name, bench in sorted(group.items(), key=lambda kv: kv[1]["stats"]["median"]):
        median = bench["stats"]["median"]
        medians[name] = median
        calls = bench.get("extra_info", {}).get("calls", "")
        rows.append(f"| {name} | {fmt(median)} | {median / base:.3g}× | {calls} |")
    return rows, medians


def interleaved_table(data: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    infos = [b["extra_info"] for b in data["benchmarks"] if "ratios" in b.get("extra_info", {})]
    head = " | ".join(RIVALS)
    rows = [
        f"| network | batch | dtype | Network.backprop | {head} | of matmul peak |",
        "|---|---|---|---|" + "---|" * len(RIVALS) + "---|",
    ]
    for info in infos:
        cells = " | ".join(f"{info['ratios'][k]:.2f}×" if k in info["ratios"] else "—" for k in RIVALS)
        rows.append(
            f"| {info['sizes']} | {info['batch']} | {info['dtype']} | "
            f"{fmt(info['best_us']['Network.backprop'] * 1e-6)} | {cells} | {info['fraction_of_peak']:.0%} |"
        )
    return rows, infos


def loop_table(groups: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    rows = ["| network | batch | dtype | Network.backprop | per-example loop |", "|---|---|---|---|---|"]
    found = []
    for group, benches in groups.items():
        ours = [b for n, b in benches.items() if n.startswith("Network.backprop")]
        loop = [b for n, b in benches.items() if n.startswith("per-example loop")]
        if not group.startswith("backprop") or not ours:
            continue
        _, _, rest = group.split(" ", 2)  # "backprop <case> [sizes] batch <n> <dtype>"
        sizes, _, tail = rest.rpartition(" batch ")
        batch, dtype = tail.split()
        base = ours[0]["stats"]["median"]
        ratio = f"{loop[0]['stats']['median'] / base:.2g}×" if loop else "—"
        found.append((sizes, int(batch), dtype, f"| {sizes} | {batch} | {dtype} | {fmt(base)} | {ratio} |"))
    return rows + [row for *_, row in sorted(found)]


def depth_tables(groups: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """check_network's time per parameter by network and dtype, then by batch size."""
    rows = [
        "| network | parameters | float64 | µs / parameter | float32 | µs / parameter |",
        "|---|---|---|---|---|---|",
    ]
    by_net: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for bench in groups.get("check_network per parameter, batch 10", {}).values():
        info = bench["extra_info"]
        by_net[info["sizes"]][info["dtype"]] = {"median": bench["stats"]["median"], **info}
    for sizes, runs in by_net.items():
        cells = []
        for dtype in ("float64", "float32"):
            run = runs.get(dtype)
            cells += [fmt(run["median"]), f"{run['us_per_parameter']:.2f}"] if run else ["—", "—"]
        parameters = next(iter(runs.values()))["parameters"]
        rows.append(f"| {sizes} | {parameters:,} | {' | '.join(cells)} |")
    rows += ["", "| batch | check_network | µs / parameter |", "|---|---|---|"]
    batches = groups.get("check_network per parameter, [784, 100, 100, 10] by batch", {}).values()
    for bench in sorted(batches, key=lambda b: b["extra_info"]["batch"]):
        info = bench["extra_info"]
        rows.append(f"| {info['batch']} | {fmt(bench['stats']['median'])} | {info['us_per_parameter']:.2f} |")
    return rows


def spread(infos: list[dict[str, Any]], key: str, dtype: str | None = None) -> str:
    values = [i["ratios"][key] for i in infos if key in i["ratios"] and (dtype is None or i["dtype"] == dtype)]
    return f"{min(values):.2f}–{max(values):.2f}×" if values else "not measured"


def rules_tables(data: dict[str, Any]) -> list[str]:
    """Verdicts on the zoo of gradient rules, and a large rule against torch's slow mode."""
    rows = [
        "| checker | rules judged | false failures (correct rule failed) | missed bugs | total time |",
        "|---|---|---|---|---|",
    ]
    for bench in data["benchmarks"]:
        for checker, row in bench.get("extra_info", {}).get("verdicts", {}).items():
            rows.append(
                f"| {checker} | {row['cases']} | {row['false failures']} | {row['missed bugs']}"
                + (f" ({'; '.join(row['missed'])})" if row.get("missed") else "")
                + " | "
                f"{fmt(row['seconds'])} |"
            )
    large = [b["extra_info"] for b in data["benchmarks"] if "torch_gradcheck_s" in b.get("extra_info", {})]
    if large:
        rows += ["", "| softplus over | gradcheck.torch | torch.autograd.gradcheck | ratio |", "|---|---|---|---|"]
        for info in sorted(large, key=lambda i: i["inputs"]):
            ratio = info["torch_gradcheck_s"] / info["ours_s"] if info.get("ours_s") else float("nan")
            rows.append(
                f"| {info['inputs']:,} inputs | {fmt(info['ours_s'])} | {fmt(info['torch_gradcheck_s'])} | "
                f"{ratio:.3g}× |"
            )
    return rows if len(rows) > 2 else []


def deep_torch(groups: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    bench = groups.get("check [784,100,100,10] batch 10", {}).get("test_torch_gradcheck_on_two_hidden_layers")
    if bench is None:
        return []
    info = bench["extra_info"]
    ratio = info.get("times_check_network", float("nan"))
    around = ", ".join(f"{t:.3g} s" for t in info.get("check_network_s", []))
    return [
        f"On [784, 100, 100, 10] (89,610 parameters), `torch.autograd.gradcheck` took {fmt(bench['stats']['median'])},",
        f"{ratio:.0f}× the time of `check_network` timed just before and just after it ({around}).",
        "",
    ]


def page(data: dict[str, Any]) -> str:
    groups = grouped(data)
    check_rows, medians = checking_table(groups[CHECK_GROUP])
    inter_rows, infos = interleaved_table(data)
    torch_ratio = medians.get("torch.autograd.gradcheck", float("nan")) / medians["check_network"]
    peak = max((i["fraction_of_peak"] for i in infos), default=float("nan"))
    text = [
        "# Benchmarks",
        "",
        "Generated by `benchmarks/summarize.py` from one run of `tox -e bench`; regenerate it with",
        "`python benchmarks/summarize.py .benchmarks/bench.json docs/benchmarks.md`. Every implementation's gradients",
        "are checked against `Network.backprop` before it is timed. The machine is shared and its speed drifts, so",
        "compare ratios measured in the same run, not absolute times across runs.",
        "",
        "## Environment",
        "",
        *environment(data),
        "",
        "## Checking every parameter of [784, 30, 10], batch 10",
        "",
        "23,860 parameters, the same loss in float64 for every checker:",
        "",
        *check_rows,
        "",
        "Calls count the loss evaluated at single points; `check_network`'s batched evaluations of perturbed losses",
        "are not calls of the loss, and the other libraries do not report theirs.",
        "",
        f"`check_network` gives full mode's verdicts, element by element, {torch_ratio:.0f}× faster than",
        "`torch.autograd.gradcheck` in this run; it computes the perturbed losses from the network's structure",
        "([how](explanation/network-check.md)). Full mode pays one loss evaluation per point of every stencil, as",
        "torch's gradcheck pays one per column of its numerical Jacobian. Fast mode and jax's `check_grads` compare",
        "derivatives along random directions, so their time hardly depends on the number of parameters; they screen",
        "rather than prove. numdifftools differentiates every parameter with several steps and leaves the comparison",
        "to you.",
        "",
        "## check_network at every depth",
        "",
        "Every hidden layer's perturbed losses come from verified interpolants of one scalar function per (unit,",
        "example) ([how](explanation/network-check.md)), so the cost per parameter no longer multiplies with the",
        "fan-in of every layer; what grows with depth is carrying each unit's change through the layers above.",
        "Medians of 3 runs, batch 10, the default sigmoid network under cross-entropy:",
        "",
        *depth_tables(groups),
        "",
        *deep_torch(groups),
        "In float32 the checker takes more stencils per element than in float64 (larger steps where float32's",
        "rounding swamps a derivative, second looks where the error estimate is large), and each stencil is one more",
        "batched evaluation: that, not the interpolants, is the difference between the two columns.",
        "",
        "## torch and jax gradient rules",
        "",
        "Twelve correct rules and the same rules with twelve realistic bugs planted (a missing factor, a square matrix",
        "transposed, one term's sign, one entry off by 1e-3, a broadcast reduction left out, the cotangent ignored,",
        "repeated indices overwritten, state accumulated across calls, a forward rule that disagrees with the reverse",
        "one, and three softmax, layer-norm and log-sum-exp slips), each in float32 and float64, judged by each",
        "checker with its defaults. One entry off by 1e-3 in float32 is below float32's resolution and counts for",
        "nobody.",
        "",
        *rules_tables(data),
        "",
        "torch's defaults (`atol=1e-5`, `rtol=1e-3`, a step of 1e-6) are meant for float64, and every correct float32",
        "rule fails them; in float64 an entry off by 1e-3 passes `rtol=1e-3`, and a forward rule is not checked",
        "unless asked for. jax's `check_grads` runs a rule once per comparison and cannot see state accumulated",
        "across calls. gradcheck's time goes into its error model (more evaluations per element) and, for jax, into",
        "the per-call dispatch of an unjitted function.",
        "",
        "## Backprop: interleaved ratios",
        "",
        "Each round times every implementation for about 0.1 s, after 0.25 s of idle time, in an order that rotates;",
        "an entry is the median over the rounds of (time ÷ `Network.backprop`), so above 1 is slower than ours.",
        '"matmuls only" is the bare matrix products of one pass with preallocated outputs; "torch matmuls only"',
        "the same products through torch's BLAS; \"of matmul peak\" is `Network.backprop`'s share of a 1024×1024",
        "product's FLOP rate.",
        "",
        *inter_rows,
        "",
        "What limits these figures:",
        "",
        f"- **Against a clean textbook numpy version** ({spread(infos, 'clean numpy', 'float64')} in float64),",
        "  `Network.backprop` also checks its arguments and computes the exact forms (σ(−z) cached for σ′, the",
        "  cancellation-free output errors); it wins the time back with a four-pass sigmoid, one overflow guard per",
        "  pass instead of per layer, and BP4's products arranged by batch size.",
        f"- **torch eager** ({spread(infos, 'torch eager')}) is slower at small batches, where its per-operation",
        '  overhead dominates, and faster at the largest, where its BLAS is: compare the two "matmuls only" columns.',
        f"- **jax jit** ({spread(infos, 'jax jit')}) fuses the element-wise passes, which pays off on the 100-layer",
        "  network, where numpy makes about 25 calls per layer.",
        f"- **The matrix products** alone take {spread(infos, 'matmuls only')} of the whole pass; the rest is the",
        "  sigmoid's exponential and the element-wise passes, which numpy runs on one core. The best share of the",
        f"  machine's matrix-product peak reached is {peak:.0%}, on the widest network at the largest batch.",
        "- **Deep float32 networks** would run about 90× slower once deltas become subnormal; the backward pass",
        "  rescales them by powers of two ([numerics](explanation/numerics.md)).",
        "",
        "## Backprop: the per-example loop and the batch sweep",
        "",
        "Medians of pytest-benchmark groups, each implementation timed to completion before the next, so the",
        "machine's drift can skew one of these ratios by up to 2×; the interleaved table above is the reliable",
        "comparison with the other implementations. The matrix form's gain over the book's per-example loop grows",
        "with the batch, and is smallest at batch 1, where there is nothing to batch.",
        "",
        *loop_table(groups),
        "",
    ]
    return "\n".join(text)


def main(source: str, target: str | None = None) -> None:
    data = json.loads(Path(source).read_text(encoding="utf-8"))
    text = page(data)
    if target is None:
        print(text)
    else:
        Path(target).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(*(sys.argv[1:3] or [".benchmarks/bench.json"]))
