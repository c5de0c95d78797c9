"""Sphinx configuration for the eosdyn documentation (Markdown pages via MyST).

The gallery (``gallery/``) is generated at build time by the local extension
``_ext/eosdyn_gallery.py``: one page per built-in catalog entry, its figure drawn by running the
lines the page shows. Nothing under ``gallery/`` is committed.
"""

import sys
from pathlib import Path

import eosdyn

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "eosdyn"
author = "eosdyn developers"
copyright = "eosdyn developers"  # noqa: A001 - Sphinx's name
release = eosdyn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "eosdyn_gallery",
    "eosdyn_api",
]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_ext", "_tools"]
autosummary_generate = False
numpydoc_show_class_members = False
# torch is the optional `nn` extra; the gallery needs the real plotting stack (the `docs` extra has it)
autodoc_mock_imports = ["torch"]

# the gallery draws each catalog entry's `quick` variant (see _ext/eosdyn_gallery.py)
eosdyn_gallery_variant = "quick"
eosdyn_gallery_render = True

html_theme = "pydata_sphinx_theme"
html_title = f"eosdyn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "header_links_before_dropdown": 4,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
# the section navigation only where a section has pages (the gallery); elsewhere the navbar suffices
html_sidebars = {page.stem: [] for page in Path(__file__).resolve().parent.glob("*.md")}
html_show_sourcelink = False
