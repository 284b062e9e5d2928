# Sphinx configuration for the kdkit course. Build with `make docs`.
import os
import sys

sys.path.insert(0, os.path.abspath("_ext"))

project = "kdkit"
copyright = "the kdkit authors"
extensions = ["kdkit_cases", "kdkit_make", "kdkit_mutants", "kdkit_rubric", "kdkit_skeleton",
              "sphinx.ext.graphviz"]
# Diagrams (docs/diagrams/*.dot) as SVG, drawn by Debian's graphviz.
graphviz_output_format = "svg"
html_theme = "furo"
html_title = "kdkit: Linux driver labs"
exclude_patterns = ["_build"]
highlight_language = "none"
html_static_path = ["_static"]
html_css_files = ["kdkit.css"]
