"""``.. kdkit-rubric:: LAB`` renders a lab's rubric from the file the grader
reads (kunit/<lab>/rubric.toml), through the same loader, so the page and
the grades cannot disagree."""
import os
import sys

from docutils import nodes
from docutils.parsers.rst import Directive

KIT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(KIT, "qemu"))
import rubric  # noqa: E402


class KdkitRubric(Directive):
    required_arguments = 1

    def run(self):
        items = rubric.load(self.arguments[0])
        table = nodes.table()
        group = nodes.tgroup(cols=5)
        table += group
        for width in (22, 7, 22, 12, 40):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += self._row(["item", "points", "needs", "visibility", "hint"])
        body = nodes.tbody()
        for item in items:
            body += self._row([item.name, f"{item.points:g}", item.needs or "", item.visibility,
                               item.hint])
        body += self._row(["total", f"{sum(i.points for i in items):g}", "", "", ""])
        group += head
        group += body
        return [table]

    @staticmethod
    def _row(cells):
        row = nodes.row()
        for text in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", text)
            row += entry
        return row


def setup(app):
    app.add_directive("kdkit-rubric", KdkitRubric)
    return {"parallel_read_safe": True}
