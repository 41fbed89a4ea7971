"""The package's layers and seams, checked from its source: which layer may import which, no private name crossing
a module boundary, ``__all__`` in every module, functions short enough to read at once, and the dependencies a
plain ``pip install gradcheck`` pulls in.

The dependency rule (also in CONTRIBUTING.md): a module may import from its own layer and the layers listed for it.

- core: ``gradcheck.errors``, ``gradcheck._args`` (argument checks), ``gradcheck.report``;
- engine: ``gradcheck._engine`` (private), on core;
- reference network: ``gradcheck.nn``, on core;
- checker API: ``gradcheck`` itself, ``gradcheck.check``, ``gradcheck.jacobian``, ``gradcheck.network_check``, on
  core, engine and the reference network;
- integrations: ``gradcheck.strategies``, ``gradcheck.plugin``, ``gradcheck._hypothesis``, ``gradcheck.suite``,
  ``gradcheck.torch``, ``gradcheck.jax``, ``gradcheck._frameworks``, on core, the reference network, the API and
  each other (never the engine);
- the book's experiments and the command: ``gradcheck.book``, ``gradcheck.__main__``, on core, the reference network
  and the API. Nothing imports them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gradcheck"

LAYERS = {  # module-name prefix -> layer; the longest matching prefix wins
    "gradcheck.errors": "core",
    "gradcheck._args": "core",
    "gradcheck.report": "core",
    "gradcheck._engine": "engine",
    "gradcheck.nn": "nn",
    "gradcheck": "api",
    "gradcheck.check": "api",
    "gradcheck.jacobian": "api",
    "gradcheck.network_check": "api",
    "gradcheck.strategies": "integrations",
    "gradcheck.plugin": "integrations",
    "gradcheck._hypothesis": "integrations",
    "gradcheck.torch": "integrations",
    "gradcheck.jax": "integrations",
    "gradcheck._frameworks": "integrations",
    "gradcheck.suite": "integrations",
    "gradcheck.book": "book",
    "gradcheck.__main__": "book",
}
ALLOWED = {
    "core": {"core"},
    "engine": {"core", "engine"},
    "nn": {"core", "nn"},
    "api": {"core", "engine", "nn", "api"},
    "integrations": {"core", "nn", "api", "integrations"},
    "book": {"core", "nn", "api", "book"},
}
LONGEST_FUNCTION = 60


def _modules() -> list[tuple[str, ast.Module]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, ast.parse(path.read_text(encoding="utf-8"))))
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} belongs to no layer: add it to LAYERS (and to CONTRIBUTING.md)"
    return LAYERS[max(matches, key=len)]


def _imports(tree: ast.Module) -> list[tuple[str, list[str], int]]:
    """(module imported from, names imported, line) for every gradcheck import, at any depth of the file."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gradcheck":
            found.append((node.module, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name.split(".")[0] == "gradcheck"]
    return found


def _targets(module: str, names: list[str]) -> list[str]:
    """``from gradcheck import nn`` imports the module gradcheck.nn; ``from gradcheck import Network`` the package."""
    submodules = {name for name, _ in MODULES}
    return [f"{module}.{n}" if f"{module}.{n}" in submodules else module for n in names] or [module]


@pytest.mark.parametrize("name, tree", MODULES, ids=[name for name, _ in MODULES])
def test_imports_follow_the_dependency_rule(name, tree):
    layer = _layer(name)
    for module, names, line in _imports(tree):
        for target in _targets(module, names):
            assert _layer(target) in ALLOWED[layer], (
                f"{name}:{line} imports {target} ({_layer(target)}), but the "
                f"{layer} layer may only use {sorted(ALLOWED[layer])}"
            )


@pytest.mark.parametrize("name, tree", MODULES, ids=[name for name, _ in MODULES])
def test_no_private_name_crosses_a_module_boundary(name, tree):
    for module, names, line in _imports(tree):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{name}:{line} imports private {private} from {module}: make it public there, or move it"


@pytest.mark.parametrize("name, tree", MODULES, ids=[name for name, _ in MODULES])
def test_every_module_declares_its_public_names(name, tree):
    declared = [
        node
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        and any(
            isinstance(t, ast.Name) and t.id == "__all__"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        )
    ]
    assert declared, f"{name} has no __all__"
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    value = declared[0].value
    if isinstance(value, (ast.List, ast.Tuple)):
        listed = {elt.value for elt in value.elts if isinstance(elt, ast.Constant)}
        public = {d for d in defined if not d.startswith("_")}
        assert public <= listed, f"{name} defines public {sorted(public - listed)} but leaves it out of __all__"


@pytest.mark.parametrize("name, tree", MODULES, ids=[name for name, _ in MODULES])
def test_functions_are_short_enough_to_read_at_once(name, tree):
    long = [
        (node.name, _code_lines(node))
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _code_lines(node) > LONGEST_FUNCTION
    ]
    assert not long, f"{name}: {long} exceed {LONGEST_FUNCTION} lines; split them into named steps"


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's length without its docstring (documentation is not what makes a function hard to read)."""
    length = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        length -= first.end_lineno - first.lineno + 1
    return length


def test_a_plain_install_pulls_in_numpy_hypothesis_and_optree_only():
    text = (PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8")
    listed = re.search(r"^dependencies = \[(.*?)\]", text, re.M | re.S)
    assert listed is not None
    names = sorted(
        re.match(r"[A-Za-z0-9_-]+", spec.strip().strip('"')).group(0)
        for spec in listed.group(1).split(",")
        if spec.strip()
    )
    assert names == ["hypothesis", "numpy", "optree"]


@pytest.mark.parametrize(
    "module",
    [
        "gradcheck",
        "gradcheck.strategies",
        "gradcheck.plugin",
        "gradcheck.check",
        "gradcheck.nn",
        "gradcheck.network_check",
        "gradcheck.jacobian",
        "gradcheck.suite",
    ],
)
def test_each_public_module_imports_on_its_own_without_the_application(module):
    code = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('tqdm', 'matplotlib', 'sklearn') "
        "or m.startswith('gradcheck.book'))\n"
        "print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_package_lists_each_lazy_name_once_and_resolves_it():
    import gradcheck

    lazy = sorted(name for name in gradcheck.__all__ if name != "__version__")
    assert lazy == sorted(gradcheck._HOME)
    for name in lazy:
        assert getattr(gradcheck, name).__name__ == name
