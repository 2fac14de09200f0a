"""A Sphinx extension for the book's offline HTML: each script once per page, and the script
that lets the vendored widget manager run with the vendored MathJax
(``book/_static/widgets_offline.js``).

Under Jupyter Book 1 with Sphinx 7, the scripts that extensions register while the environment is
read (sphinx-thebe's configuration, sphinx-togglebutton's selector) reach every page twice, at two
priorities. Twice is harmless for ``var`` but a SyntaxError for sphinx-thebe's ``const``
declarations, an error in the console of every page; the browser test (tests/test_browser.py)
catches it.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _drop_repeated_scripts(app: Sphinx, pagename: str, templatename: str, context: dict,
                           doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        attributes = getattr(script, "attributes", {})
        # The repeats differ in priority, and in a filename of None or "" for inline scripts.
        key = (getattr(script, "filename", script) or "", tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    """Register the page handler late, after the extensions that add scripts to a page."""
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    # Before RequireJS and the widget manager (myst-nb adds them at priority 500) and before the
    # deferred MathJax.
    app.add_js_file("widgets_offline.js", priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
