"""Cross-references to the names users write resolve to where those things are documented.

gradcheck re-exports its exceptions and the reference network at the top level (``gradcheck.GradientMismatch``,
``gradcheck.Network``), and type hints name some classes by their private home (``numpy.random._generator``).
Sphinx looks a reference up by the name written; this maps each such name to its documented one, so the build
runs with nitpicky on and no reference is left dead.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.ext import intersphinx

__all__ = ["ALIASES", "setup"]

_ERRORS = ("GradcheckError", "GradientMismatch", "InvalidArgument", "InvalidType", "MissingDependency")
ALIASES = {
    **{f"gradcheck.{name}": f"gradcheck.errors.{name}" for name in _ERRORS},
    **{name: f"gradcheck.errors.{name}" for name in _ERRORS},
    "gradcheck.Network": "gradcheck.nn.network.Network",
    "gradcheck.nn.Network": "gradcheck.nn.network.Network",
    "INCONCLUSIVE": "gradcheck.report.INCONCLUSIVE",
    "LeafReport.unresolved": "gradcheck.LeafReport.unresolved",
    "numpy.random._generator.Generator": "numpy.random.Generator",
    "np.random.Generator": "numpy.random.Generator",
    "np.ndarray": "numpy.ndarray",
    "numpy.integer": "numpy.integer",
    "hypothesis._settings.settings": "hypothesis.settings",
}


def _resolve(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    target = ALIASES.get(node.get("reftarget"))
    if target is None:
        return None
    node["reftarget"] = target
    found = env.get_domain("py").resolve_xref(
        env, node.get("refdoc", ""), app.builder, node["reftype"], target, node, contnode
    )
    if found is None and node["reftype"] == "class":  # numpy's scalar types are documented as classes or data
        found = env.get_domain("py").resolve_any_xref(env, node.get("refdoc", ""), app.builder, target, node, contnode)
        found = found[0][1] if found else None
    return found if found is not None else intersphinx.missing_reference(app, env, node, contnode)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True}
