"""Sphinx extension: small fixes to the HTML pages that the browser test found.

- sphinx-thebe registers its inline configuration script (``const THEBE_JS_URL = ...``)
  twice in a Jupyter Book build, so every page threw "Identifier 'THEBE_JS_URL' has
  already been declared" in the browser console. Each page now loads each script once.

- ``book/_static/w2sg-layout.css`` on every page: code cells and tables that fit the
  text column at a 1280-pixel window (no sideways scrolling).

Registered in ``_config.yml`` under ``sphinx: local_extensions``; checked by
``tests/browser/test_site.py`` (no console error on any page).
"""

from __future__ import annotations


def _key(script):
    # an inline script has filename None or "" depending on who added it
    return (getattr(script, "filename", script) or "", tuple(sorted(
        (k, str(v)) for k, v in getattr(script, "attributes", {}).items())))


def dedupe_scripts(app, pagename, templatename, context, doctree):
    """html-page-context: drop repeated script entries, keeping the first of each."""
    scripts, seen = [], set()
    for script in context.get("script_files", []):
        key = _key(script)
        if key not in seen:
            seen.add(key)
            scripts.append(script)
    context["script_files"] = scripts


def setup(app):
    app.add_css_file("w2sg-layout.css")  # book/_static/w2sg-layout.css
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
