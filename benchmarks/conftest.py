"""What a benchmark run records about its environment, so that the benchmarks page can be headed by it: the BLAS
numpy calls, the versions of everything timed, the cores, and the command that produced the run."""

from __future__ import annotations

import importlib.metadata
import os
import sys
from typing import Any

import numpy as np


def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    versions = {}
    for package in ("numpy", "torch", "jax", "jaxlib", "numdifftools", "hypothesis", "gradcheck", "pytest-benchmark"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    machine_info["gradcheck_environment"] = {
        "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
        "blas_configuration": blas.get("openblas configuration", ""),
        "cores": os.cpu_count(),
        "versions": versions,
        "command": "pytest " + " ".join(sys.argv[1:]),
    }
