"""A Sphinx directive that writes the ``gradcheck`` command's reference from its argparse parser: the help of the
command and of each subcommand, exactly as ``--help`` prints it, so the page cannot drift from the code."""

from __future__ import annotations

import os
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


class CliReference(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from gradcheck.book.cli import parser, subcommands

        os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width; fix it for a stable page
        top = parser()
        out: list[nodes.Node] = [_help(top.format_help())]
        for name, sub in subcommands(top).items():
            section = nodes.section(ids=[f"gradcheck-{name}"])
            section += nodes.title(text=f"gradcheck {name}")
            section += _help(sub.format_help())
            out.append(section)
        return out


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("gradcheck-cli", CliReference)
    return {"parallel_read_safe": True}


def _help(text: str) -> nodes.literal_block:
    """A help text as plain text: it is no Python, and Pygments would colour it as if it were."""
    block = nodes.literal_block(text=text)
    block["language"] = "text"
    return block
