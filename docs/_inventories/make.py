"""Write the intersphinx inventories the documentation links through: the few objects of Python, NumPy,
Hypothesis and pytest that gradcheck's pages and signatures name, with the address of each one's documentation.

    python docs/_inventories/make.py
"""

from __future__ import annotations

import zlib
from pathlib import Path

# name, domain:role, address relative to the project's documentation root
OBJECTS = {
    "python": [
        ("ValueError", "py:exception", "library/exceptions.html#ValueError"),
        ("TypeError", "py:exception", "library/exceptions.html#TypeError"),
        ("AssertionError", "py:exception", "library/exceptions.html#AssertionError"),
        ("ImportError", "py:exception", "library/exceptions.html#ImportError"),
        ("Exception", "py:exception", "library/exceptions.html#Exception"),
        ("float", "py:class", "library/functions.html#float"),
        ("int", "py:class", "library/functions.html#int"),
        ("str", "py:class", "library/stdtypes.html#str"),
        ("bool", "py:class", "library/functions.html#bool"),
        ("list", "py:class", "library/stdtypes.html#list"),
        ("dict", "py:class", "library/stdtypes.html#dict"),
        ("tuple", "py:class", "library/stdtypes.html#tuple"),
        ("typing.Any", "py:data", "library/typing.html#typing.Any"),
        ("collections.abc.Callable", "py:class", "library/collections.abc.html#collections.abc.Callable"),
        ("collections.abc.Sequence", "py:class", "library/collections.abc.html#collections.abc.Sequence"),
        ("argparse", "py:module", "library/argparse.html#module-argparse"),
    ],
    "numpy": [
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray"),
        ("numpy.dtype", "py:class", "reference/generated/numpy.dtype.html#numpy.dtype"),
        ("numpy.float32", "py:class", "reference/arrays.scalars.html#numpy.float32"),
        ("numpy.float64", "py:class", "reference/arrays.scalars.html#numpy.float64"),
        ("numpy.errstate", "py:class", "reference/generated/numpy.errstate.html#numpy.errstate"),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#numpy.random.Generator"),
        ("numpy.random.default_rng", "py:function", "reference/random/generator.html#numpy.random.default_rng"),
    ],
    "hypothesis": [
        ("hypothesis.given", "py:function", "reference/api.html#hypothesis.given"),
        ("hypothesis.settings", "py:class", "reference/api.html#hypothesis.settings"),
        ("hypothesis.find", "py:function", "reference/api.html#hypothesis.find"),
        (
            "hypothesis.strategies.SearchStrategy",
            "py:class",
            "reference/strategies.html#hypothesis.strategies.SearchStrategy",
        ),
        ("hypothesis.strategies.composite", "py:function", "reference/strategies.html#hypothesis.strategies.composite"),
        ("hypothesis.strategies.from_type", "py:function", "reference/strategies.html#hypothesis.strategies.from_type"),
        (
            "hypothesis.database.DirectoryBasedExampleDatabase",
            "py:class",
            "reference/api.html#hypothesis.database.DirectoryBasedExampleDatabase",
        ),
    ],
    "pytest": [
        ("pytest.Config", "py:class", "reference/reference.html#pytest.Config"),
        ("pytest.mark.parametrize", "py:function", "reference/reference.html#pytest-mark-parametrize"),
        ("pytest.raises", "py:function", "reference/reference.html#pytest.raises"),
        ("pytest.fixture", "py:function", "reference/reference.html#pytest.fixture"),
    ],
}
PROJECTS = {
    "python": ("Python", "3"),
    "numpy": ("NumPy", "stable"),
    "hypothesis": ("Hypothesis", "latest"),
    "pytest": ("pytest", "stable"),
}


def inventory(project: str, version: str, objects: list[tuple[str, str, str]]) -> bytes:
    header = (
        f"# Sphinx inventory version 2\n# Project: {project}\n# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    body = "".join(f"{name} {role} 1 {uri} -\n" for name, role, uri in objects).encode()
    return header + zlib.compress(body)


def main() -> None:
    here = Path(__file__).resolve().parent
    for name, objects in OBJECTS.items():
        (here / f"{name}.inv").write_bytes(inventory(*PROJECTS[name], objects))


if __name__ == "__main__":
    main()
