"""Sphinx configuration of the flask-psp documentation (``make docs``).

Pages are MyST Markdown. Where a new page goes (see index.md): a developer topic at ``docs/<topic>.md``,
a provider at ``docs/providers/<provider>.md``, a French page at ``docs/fr/<topic>.md``; the globbing
toctrees of index.md and fr/index.md pick them up, so only ordering needs an edit.
"""

import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)  # autodoc imports flask_psp from this checkout

from flask_psp import __version__  # noqa: E402

project = "flask-psp"
author = "flask-psp contributors"
copyright = "2026, flask-psp contributors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "screenshots", "Thumbs.db", ".DS_Store"]
language = "en"

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # `[x](configuration.md#psp-url-prefix)` links to a heading

autodoc_member_order = "bysource"
autodoc_typehints = "description"

# -n (nitpicky) is on: these are names of other projects, which would need intersphinx (the network)
nitpick_ignore_regex = [
    (r"py:.*", r"(flask|werkzeug|sqlalchemy|flask_sqlalchemy|blinker|celery|datetime|typing)\..*"),
    (r"py:class", r"Flask|Celery|Signal|NamedSignal"),
    (r"py:class", r"Payment"),  # a string annotation under TYPE_CHECKING in orders.py
]

html_theme = "furo"
html_title = f"flask-psp {release}"
html_static_path = []
