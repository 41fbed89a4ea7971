"""Every code example in the README and the documentation runs, so the documents cannot drift from the code.

In each page, in order and in one namespace:

- ```` ```python ```` blocks are executed; afterwards every ``test_*`` function they defined is called, with the
  ``gradcheck`` fixture when it asks for one (that is how a reader would run them under pytest);
- ```` ```pycon ```` blocks are doctests: ``>>>`` lines run and their output must match (``...`` matches anything
  where a block says ``# doctest: +ELLIPSIS``).

Blocks in other languages (``text``, ``console``, ``toml``) are shown, not run.
"""

from __future__ import annotations

import ast
import doctest
import inspect
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.M | re.S)


def blocks(page: Path) -> list[tuple[str, str, int]]:
    """(language, code, line) of every fenced block of ``page``."""
    text = page.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def runnable(page: Path) -> bool:
    return any(language in ("python", "pycon") for language, _, _ in blocks(page))


@pytest.mark.parametrize(
    "page", [p for p in PAGES if runnable(p)], ids=lambda p: str(p.relative_to(ROOT)).replace("/", ".")
)
def test_the_examples_of_each_page_run(page, gradcheck, tmp_path, monkeypatch):
    text = page.read_text(encoding="utf-8")
    for framework in ("torch", "jax"):  # their pages run where they are installed (tox -e frameworks)
        if f"import {framework}" in text:
            pytest.importorskip(framework)
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for language, code, line in blocks(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if language == "python":
            exec(compile(code, where, "exec"), namespace)
        elif language == "pycon":
            test = doctest.DocTestParser().get_doctest(code, namespace, where, where, line)
            report: list[str] = []
            failures = runner.run(test, out=report.append, clear_globs=False).failed
            assert not failures, "".join(report)
            namespace.update(test.globs)  # DocTest ran on a copy of the namespace
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            for arguments in _calls(value):
                wanted = inspect.signature(value).parameters
                value(**arguments, **({"gradcheck": gradcheck} if "gradcheck" in wanted else {}))


def _calls(test):
    """The keyword arguments of every call pytest would make of ``test``: one per value of each
    ``@pytest.mark.parametrize`` (with a single argument name), or one call without arguments."""
    calls = [{}]
    for mark in getattr(test, "pytestmark", []):
        if mark.name == "parametrize":
            argname, values = mark.args[0], mark.args[1]
            calls = [{**call, argname: value} for call in calls for value in values]
    return calls


def test_pages_only_use_languages_the_runner_knows_or_shows():
    known = {"python", "pycon", "text", "console", "toml", "ini"}
    for page in PAGES:
        for language, _, line in blocks(page):
            assert language in known, f"{page.relative_to(ROOT)}:{line} uses ```{language}; use one of {known}"


PUBLIC_MODULES = [
    "gradcheck",
    "gradcheck.errors",
    "gradcheck.report",
    "gradcheck.nn.network",
    "gradcheck.nn.loop",
    "gradcheck.nn.activations",
    "gradcheck.nn.costs",
    "gradcheck.strategies",
]


def test_the_api_reference_lists_every_public_name():
    import importlib

    reference = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs" / "reference").glob("*.md"))
    whole = {
        m.group(1)
        for m in re.finditer(r"\.\. automodule:: ([\w.]+)\n(?:   :undoc-members:\n)?   :members:\n", reference)
    }
    missing = []
    for module in PUBLIC_MODULES:
        if module in whole:
            continue
        for name in importlib.import_module(module).__all__:
            if name != "__version__" and not re.search(rf"\b{re.escape(name)}\b", reference):
                missing.append(f"{module}.{name}")
    assert not missing, f"the API reference does not mention {missing}"


DOCUMENTED = {
    "gradcheck/check.py": ["check_gradient", "assert_gradient"],
    "gradcheck/jacobian.py": ["check_jacobian"],
    "gradcheck/network_check.py": ["check_network"],
    "gradcheck/strategies.py": ["architectures", "networks", "problems", "float_arrays", "pytrees"],
    "gradcheck/torch.py": ["check_function", "assert_function"],
    "gradcheck/jax.py": ["check_function", "assert_function"],
}


def _described(doc: str) -> list[str]:
    """The names an ``Args:`` section (Google style, as Sphinx's napoleon renders it) describes."""
    lines = doc.splitlines()
    if "Args:" not in [line.strip() for line in lines]:
        return []
    start = [line.strip() for line in lines].index("Args:") + 1
    names = []
    for line in lines[start:]:
        if line.strip() and not line.startswith(" " * 4):
            break
        match = re.match(r"^ {4}(\*{0,2}\w+)(?: \(.*\))?: \S", line)
        if match:
            names.append(match.group(1))
        elif line.strip() and not line.startswith(" " * 8):
            break
    return names


@pytest.mark.parametrize(
    "path, name", [(path, name) for path, names in DOCUMENTED.items() for name in names], ids=lambda v: str(v)
)
def test_every_parameter_of_the_main_public_callables_is_described(path, name):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    (fn,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    a = fn.args
    params = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
    params += [f"*{a.vararg.arg}"] if a.vararg else []
    params += [f"**{a.kwarg.arg}"] if a.kwarg else []
    doc = ast.get_docstring(fn) or ""
    missing = [p for p in params if p not in _described(doc)]
    assert not missing, f"{path}:{name} does not describe {missing} under Args:"
    assert "Returns:" in doc, f"{path}:{name} says nothing under Returns:"
