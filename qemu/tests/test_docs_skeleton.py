"""The lab pages show the skeleton the kit hands out, whatever labs/ holds now."""
import glob
import os

import pytest

from harness.lab import KIT



def test_no_lab_page_includes_a_file_from_labs():
    for page in glob.glob(os.path.join(KIT, "docs", "labs", "*.rst")):
        assert "../../labs/" not in open(page).read(), page


@pytest.fixture(scope="module")
def student_site(tmp_path_factory):
    from course import docs
    out = tmp_path_factory.mktemp("site")
    proc = docs.build("student", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.parametrize("lab", ["hello", "vser", "fsled", "dma"])
def test_each_lab_page_shows_the_skeleton_students_get(student_site, lab):
    """Read from the built page, as a student sees it: the skeleton the kit
    hands out for the lab (labs/<lab>/, which make check keeps equal to
    what skelgen makes of the solution), whole, and no solution line."""
    from selfcheck import doccheck
    shown = doccheck.page_text(os.path.join(student_site, "labs", f"{lab}.html"))
    for name in os.listdir(os.path.join(KIT, "labs", lab)):
        if name.endswith(".c"):
            given = open(os.path.join(KIT, "labs", lab, name)).read()
            assert doccheck.squeeze(given.expandtabs(8)) in shown, f"{lab}/{name} is not on the page"
