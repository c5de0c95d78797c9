"""Sphinx configuration for the eosdyn documentation (Markdown pages via MyST)."""

import eosdyn

project = "eosdyn"
author = "eosdyn developers"
release = eosdyn.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
]
myst_enable_extensions = ["dollarmath", "amsmath"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
autosummary_generate = False
numpydoc_show_class_members = False
autodoc_mock_imports = ["torch", "holoviews"]
html_theme = "alabaster"
