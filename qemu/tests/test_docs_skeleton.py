"""The lab pages show the skeleton the kit hands out, whatever labs/ holds now."""
import glob
import os
import sys

import pytest

from course import skelgen
from harness.lab import KIT



def test_no_lab_page_includes_a_file_from_labs():
    for page in glob.glob(os.path.join(KIT, "docs", "labs", "*.rst")):
        assert "../../labs/" not in open(page).read(), page


def test_the_skeleton_directive_renders_what_skelgen_makes_of_the_solution():
    core = pytest.importorskip("docutils.core")
    from docutils.parsers.rst import directives
    sys.path.insert(0, os.path.join(KIT, "docs", "_ext"))
    import kdkit_skeleton
    directives.register_directive("kdkit-skeleton", kdkit_skeleton.KdkitSkeleton)
    tree = core.publish_doctree(".. kdkit-skeleton:: vser/vser.c\n",
                                settings_overrides={"report_level": 5})
    want = skelgen.strip(open(os.path.join(KIT, "solutions", "vser", "vser.c")).read())
    assert tree.astext().strip() == want.expandtabs(8).strip()
