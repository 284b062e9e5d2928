"""``.. kdkit-rubric:: LAB`` renders a lab's rubric from the file the grader
reads (kunit/<lab>/rubric.toml), through the same loader, so the page and
the grades cannot disagree."""
import os
import sys

from docutils.parsers.rst import Directive

from kdkit_table import table

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(KIT, "qemu"))
from grader import rubric  # noqa: E402


class KdkitRubric(Directive):
    required_arguments = 1

    def run(self):
        items = rubric.load(self.arguments[0])
        rows = [[i.name, f"{i.points:g}", i.needs or "", i.visibility, i.hint] for i in items]
        rows.append(["total", f"{sum(i.points for i in items):g}", "", "", ""])
        return [table((22, 7, 22, 12, 40), ["item", "points", "needs", "visibility", "hint"], rows)]


def setup(app):
    app.add_directive("kdkit-rubric", KdkitRubric)
    return {"parallel_read_safe": True}
