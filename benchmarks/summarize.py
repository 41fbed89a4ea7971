"""Turn pytest-benchmark's JSON into the README's tables: medians per group, and each time as a ratio to
`Network.backprop` (or to check_network) measured in the same run.

    python benchmarks/summarize.py .benchmarks/bench.json
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

NAMES = {
    "test_gradcheck_backprop": "Network.backprop",
    "test_numpy_matrix_reference": "clean numpy",
    "test_per_example_loop": "per-example loop",
    "test_torch_eager": "torch eager",
    "test_jax_jit": "jax jit",
    "test_matmul_ceiling": "matmuls only",
    "test_check_network_every_parameter": "check_network",
    "test_check_gradient_fast_mode": "check_gradient fast",
    "test_check_gradient_default_mode": "check_gradient full",
    "test_torch_autograd_gradcheck": "torch gradcheck",
    "test_jax_check_grads": "jax check_grads",
    "test_numdifftools_gradient": "numdifftools Gradient",
}


def fmt(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    groups: dict[str, dict[str, dict]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        name = NAMES.get(bench["name"].split("[")[0], bench["name"])
        groups[bench["group"] or ""][name] = bench
    print(
        f"machine: {data['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
        f"python {data['machine_info'].get('python_version')}, {data['datetime']}\n"
    )
    interleaved = [b for b in data["benchmarks"] if "ratios" in b.get("extra_info", {})]
    if interleaved:
        print("### interleaved rounds (time ÷ Network.backprop, median of per-round ratios)")
        print(
            "| network | batch | dtype | Network.backprop (best) | clean numpy | torch eager | jax jit | matmuls only "
            "| torch matmuls only | of matmul peak |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for bench in interleaved:
            info = bench["extra_info"]
            ratios = info["ratios"]
            cells = [
                f"{ratios[k]:.2f}×" if k in ratios else "not installed"
                for k in ("clean numpy", "torch eager", "jax jit", "matmuls only", "torch matmuls only")
            ]
            print(
                f"| {info['sizes']} | {info['batch']} | {info['dtype']} | "
                f"{fmt(info['best_us']['Network.backprop'] * 1e-6)} | {' | '.join(cells)} | "
                f"{info['fraction_of_peak']:.0%} |"
            )
        print()
    for group, benches in groups.items():
        if group.startswith("interleaved"):
            continue
        base_name = "Network.backprop" if "Network.backprop" in benches else "check_network"
        base = benches.get(base_name, {}).get("stats", {}).get("median")
        print(f"### {group}")
        print("| implementation | median | min | vs " + base_name + " | GFLOP/s |")
        print("|---|---|---|---|---|")
        for name, bench in sorted(benches.items(), key=lambda kv: kv[1]["stats"]["median"]):
            stats = bench["stats"]
            ratio = f"{stats['median'] / base:.2f}×" if base else ""
            gflops = bench.get("extra_info", {}).get("gflops_per_s", "")
            print(f"| {name} | {fmt(stats['median'])} | {fmt(stats['min'])} | {ratio} | {gflops} |")
        for name, bench in benches.items():
            paired = bench.get("extra_info", {}).get("times_check_network")
            if paired:
                print(f"\n{name} ÷ check_network timed back to back (best of 3 before and after): {paired}×")
        print()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".benchmarks/bench.json")
