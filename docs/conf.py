"""Sphinx configuration of gradcheck's documentation: MyST pages, autodoc from the reStructuredText docstrings,
the command's reference generated from its parser, and links to Python, NumPy, Hypothesis and pytest through
inventories kept in the repository (the build never downloads anything)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath("_ext"))

import gradcheck

project = "gradcheck"
author = "the gradcheck developers"
copyright = "2026, the gradcheck developers"
release = version = gradcheck.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "cli_reference",
    "aliases",
]
nitpicky = True  # every cross-reference must resolve (docs/_ext/aliases.py maps re-exported names)
nitpick_ignore = [
    ("py:class", "gradcheck.suite._Adapter"),  # a private return type in a public signature
    ("py:class", "numpy.integer"),  # in numpy's docs, but not in its inventory
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_inventories", "_ext"]
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_mock_imports = ["torch", "jax"]  # their reference pages build without them installed
autodoc_typehints = "description"
autodoc_preserve_defaults = True  # a default shows as written (RULE), not as its value
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_numpy_docstring = False

# Inventories of the pages gradcheck links to, checked in so that the build works offline; regenerate them with
# `python docs/_inventories/make.py` when a link target moves.
intersphinx_mapping = {
    name: (url, os.path.join("_inventories", f"{name}.inv"))
    for name, url in {
        "python": "https://docs.python.org/3",
        "numpy": "https://numpy.org/doc/stable",
        "hypothesis": "https://hypothesis.readthedocs.io/en/latest",
        "pytest": "https://docs.pytest.org/en/stable",
    }.items()
}

html_theme = "furo"
html_title = f"gradcheck {release}"
html_static_path = ["_static"]
html_css_files = ["wrap.css"]  # wide reports and help texts wrap instead of being cut off
